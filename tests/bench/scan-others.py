#!/usr/bin/env python3
"""Runs zxing-cpp (in process) and zbarimg (one process per image) on the QR
corpus and prints one JSON object per image and decoder, in the same shape as
Countersign's own scan benchmark:

  {"decoder": ..., "file": ..., "payloads": [...], "load_ms": ..., "decode_ms": ...}

load_ms is reading and decoding the image file into grey pixels, decode_ms
is finding the QR codes in those pixels. zbarimg does both in one process, so
its whole wall time (process start included) is reported as decode_ms.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import zxingcpp
from PIL import Image

CORPUS = Path(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def zxing(path):
    best = None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        image = Image.open(path)
        image = image.convert("L")
        loaded = time.perf_counter()
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        done = time.perf_counter()
        sample = ((loaded - start) * 1e3, (done - loaded) * 1e3, [r.text for r in found if r.valid])
        if best is None or sample[0] + sample[1] < best[0] + best[1]:
            best = sample
    return best


def zbar(path):
    best = None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
                             capture_output=True, timeout=60)
        elapsed = (time.perf_counter() - start) * 1e3
        # --raw prints each payload followed by a newline (the corpus payloads are single lines).
        payloads = [line for line in run.stdout.decode("utf-8", "replace").split("\n") if line]
        if best is None or elapsed < best[1]:
            best = (0.0, elapsed, payloads)
    return best


def main():
    expected = json.loads((CORPUS / "expected.json").read_text())
    for name in expected:
        for decoder, run in (("zxing-cpp", zxing), ("zbarimg", zbar)):
            load_ms, decode_ms, payloads = run(CORPUS / name)
            print(json.dumps({"decoder": decoder, "file": name, "payloads": payloads,
                              "load_ms": round(load_ms, 3), "decode_ms": round(decode_ms, 3)}), flush=True)


if __name__ == "__main__":
    main()
