#!/usr/bin/env python3
"""Reads the JSON lines of every decoder's run on the corpus (stdin) and
prints, per category and decoder, the decode rate and the median / p95 time
per image, plus the false payloads. Standard library only.

An image counts as decoded when every expected payload was found. A payload
that is not expected for that image is a false payload.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

expected = json.loads((Path(sys.argv[1]) / "expected.json").read_text())
runs = [json.loads(line) for line in sys.stdin if line.strip()]
decoders = list(dict.fromkeys(r["decoder"] for r in runs))
categories = list(dict.fromkeys(name.split("/")[0] for name in expected))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


cells = defaultdict(lambda: {"ok": 0, "n": 0, "false": 0, "ms": []})
for r in runs:
    want = set(expected[r["file"]])
    got = set(r["payloads"])
    for key in ((r["decoder"], r["file"].split("/")[0]), (r["decoder"], "all")):
        cell = cells[key]
        cell["n"] += 1
        cell["ok"] += want <= got
        cell["false"] += len(got - want)
        cell["ms"].append(r["load_ms"] + r["decode_ms"])

header = "| category | " + " | ".join(f"{d} decoded | {d} median / p95 ms" for d in decoders) + " |"
print(header)
print("|---" * (1 + 2 * len(decoders)) + "|")
for category in categories + ["all"]:
    row = [f"**{category}**" if category == "all" else category]
    for d in decoders:
        cell = cells[(d, category)]
        if not cell["n"]:
            row += ["-", "-"]
            continue
        false = f" ({cell['false']} false)" if cell["false"] else ""
        row.append(f"{cell['ok']}/{cell['n']}{false}")
        row.append(f"{statistics.median(cell['ms']):.1f} / {percentile(cell['ms'], 95):.1f}")
    print("| " + " | ".join(row) + " |")

print()
print("| decoder | load median ms | decode median / p95 ms | whole median / p95 ms | false payloads |")
print("|---|---|---|---|---|")
for d in decoders:
    mine = [r for r in runs if r["decoder"] == d]
    load = [r["load_ms"] for r in mine]
    decode = [r["decode_ms"] for r in mine]
    whole = [r["load_ms"] + r["decode_ms"] for r in mine]
    print(f"| {d} | {statistics.median(load):.1f} | {statistics.median(decode):.1f} / {percentile(decode, 95):.1f} | "
          f"{statistics.median(whole):.1f} / {percentile(whole, 95):.1f} | {cells[(d, 'all')]['false']} |")
