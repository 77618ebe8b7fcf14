#!/usr/bin/env python3
"""Runs zxing-cpp and zbar (libzbar through pyzbar), both in process, on a QR
corpus and prints one JSON object per image and decoder, in the same shape as
Countersign's own scan benchmark:

  {"decoder": ..., "file": ..., "payloads": [...], "load_ms": ..., "decode_ms": ...}

load_ms is reading and decoding the image file into grey pixels (Pillow),
decode_ms is finding the QR codes in those pixels. Each is the fastest of
ROUNDS rounds. zxing-cpp runs with its Python defaults (try harder, rotate,
invert, downscale all on).
"""

import json
import sys
import time
from pathlib import Path

import zxingcpp
from PIL import Image
from pyzbar import pyzbar

CORPUS = Path(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def zxing(image):
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in found if r.valid]


def zbar(image):
    found = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [r.data.decode("utf-8", "replace") for r in found]


def timed(path, decode):
    best = None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        image = Image.open(path)
        image = image.convert("L")
        loaded = time.perf_counter()
        payloads = decode(image)
        done = time.perf_counter()
        sample = ((loaded - start) * 1e3, (done - loaded) * 1e3, payloads)
        if best is None or sample[0] + sample[1] < best[0] + best[1]:
            best = sample
    return best


def main():
    expected = json.loads((CORPUS / "expected.json").read_text())
    for name in expected:
        for decoder, decode in (("zxing-cpp", zxing), ("zbar", zbar)):
            load_ms, decode_ms, payloads = timed(CORPUS / name, decode)
            print(json.dumps({"decoder": decoder, "file": name, "payloads": payloads,
                              "load_ms": round(load_ms, 3), "decode_ms": round(decode_ms, 3)}), flush=True)


if __name__ == "__main__":
    main()
