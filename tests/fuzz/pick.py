"""Keeps a small corpus: a greedy cover of the edges in a libFuzzer merge
control file. Seeds (files named seed-*) are always kept; then, up to MAX
files, the input adding the most edges not yet covered (the smaller one on a
tie). Used by `tests/fuzz/run --minimize`.

    python3 pick.py CONTROL_FILE OUT_DIR MAX
"""
import os
import shutil
import sys

control, out, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(control).read().split("\n")
count = int(lines[0])
files = lines[2 : 2 + count]
edges = {}
for line in lines[2 + count :]:
    if line.startswith("COV "):
        fields = line.split()
        edges[int(fields[1])] = set(map(int, fields[2:]))
covered, chosen = set(), []
for index, path in enumerate(files):
    if os.path.basename(path).startswith("seed-") and index in edges:
        chosen.append(index)
        covered |= edges[index]
while len(chosen) < most:
    best, gain = None, 0
    for index, found in edges.items():
        if index in chosen:
            continue
        new = len(found - covered)
        if new > gain or (new == gain and new > 0 and os.path.getsize(files[index]) < os.path.getsize(files[best])):
            best, gain = index, new
    if best is None:
        break
    chosen.append(best)
    covered |= edges[best]
os.makedirs(out, exist_ok=True)
for index in chosen:
    shutil.copy(files[index], os.path.join(out, os.path.basename(files[index])))
everything = set().union(*edges.values()) if edges else set()
print(f"kept {len(chosen)} of {count} inputs, covering {len(covered)} of {len(everything)} edges")
