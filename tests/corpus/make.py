#!/usr/bin/env python3
"""Builds the QR scanning corpora: the committed regression set and the wide set.

Each category holds images of one kind of difficulty a desktop user meets:
a page on screen, a screenshot, a photo of a printout, a dark-mode page, the
dense multi-account code Google Authenticator exports.

The regression set (no arguments; tests/corpus/make runs it)
    96 images, 12 categories x 8, written into tests/corpus/ with
    expected.json and committed: tests read them and never need Python.
    Category k draws from random.Random(k), so a rerun with the versions
    pinned in requirements.txt writes byte-identical files. It is small
    and has been looked at while tuning the scanner; treat it as a
    regression test, not as a measure of how well the scanner reads.

The wide set (--wide; tests/corpus/wide runs it)
    12 other categories x 45 images (--per-category), with parameters drawn
    over wider ranges (sizes, module sizes, blur, JPEG quality, ECC levels
    L-H, placement, quiet zones) and new variations (4K dark mode, motion
    blur, vignettes, 12 MP photos, damaged quiet zones, ...). It is never
    committed: it is generated at benchmark/test time from a seed into a
    directory under target/, as DIR/<category>/NN.<ext> plus
    DIR/expected.json (same shape as the regression set's). Every image
    draws from its own RNGs, seeded from the string "<seed>/<category>/<index>",
    so images do not depend on each other, on the order of the workers
    that make them, or on the other categories.
    Develop on one seed (7, the development seed) and report on another
    (20261206, the report seed) that nobody looks at or tunes on. The report
    seed's sha256 manifest is pinned in tests/corpus/wide-20261206.sha256;
    --check compares a fresh run against it, so a change of library versions
    (or of this script) is noticed rather than silently moving the numbers.

Command line
    make.py
        the regression set, into tests/corpus/ (as always)
    make.py --wide --seed N --out DIR [--per-category K] [--jobs J]
            [--write-hashes FILE | --check FILE]
        the wide set for seed N into DIR; then either write the manifest
        ("sha256  relative/path" lines, sorted) to FILE, or compare with
        FILE and exit 1 listing what differs.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import qrcode
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

OUT = Path(__file__).resolve().parent
PER_CATEGORY = 8
ECC = [ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q]


# --- payloads -------------------------------------------------------------

ISSUERS = ["GitHub", "Google", "Microsoft", "Dropbox", "Proton", "GitLab", "Amazon Web Services", "Example Co", "Zürich Bank", "Fastmail"]
NAMES = ["alice@example.com", "bob.smith@example.org", "carol", "dave+mfa@corp.example", "eve@x.test", "frank.o'neil@example.net"]
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def migration_message_class():
    """Google Authenticator's MigrationPayload, from its published .proto
    (field numbers as in every open decoder), built with the protobuf library."""
    f = descriptor_pb2.FileDescriptorProto(name="migration.proto", package="googleauth", syntax="proto3")
    m = f.message_type.add(name="MigrationPayload")
    p = m.nested_type.add(name="OtpParameters")
    T = descriptor_pb2.FieldDescriptorProto
    for name, number, kind in [("secret", 1, T.TYPE_BYTES), ("name", 2, T.TYPE_STRING), ("issuer", 3, T.TYPE_STRING),
                               ("algorithm", 4, T.TYPE_INT32), ("digits", 5, T.TYPE_INT32), ("type", 6, T.TYPE_INT32),
                               ("counter", 7, T.TYPE_INT64)]:
        p.field.add(name=name, number=number, type=kind, label=T.LABEL_OPTIONAL)
    m.field.add(name="otp_parameters", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                type_name=".googleauth.MigrationPayload.OtpParameters")
    for name, number in [("version", 2), ("batch_size", 3), ("batch_index", 4), ("batch_id", 5)]:
        m.field.add(name=name, number=number, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("googleauth.MigrationPayload"))


MIGRATION = migration_message_class()


def otpauth(rng):
    issuer, name = rng.choice(ISSUERS), rng.choice(NAMES)
    secret = "".join(rng.choice(B32) for _ in range(rng.choice([16, 26, 32, 52])))
    uri = f"otpauth://totp/{quote(issuer)}:{quote(name)}?secret={secret}&issuer={quote(issuer)}"
    if rng.random() < 0.3:
        uri += rng.choice(["&algorithm=SHA256&digits=8", "&period=60", "&digits=7&algorithm=SHA512"])
    return uri


def migration(rng, accounts):
    message = MIGRATION(version=1, batch_size=1, batch_index=0, batch_id=rng.randrange(1, 2**31))
    for _ in range(accounts):
        issuer = rng.choice(ISSUERS)
        message.otp_parameters.add(secret=rng.randbytes(rng.choice([10, 20])), name=f"{issuer}:{rng.choice(NAMES)}",
                                   issuer=issuer, algorithm=1, digits=1, type=2)
    data = base64.b64encode(message.SerializeToString()).decode()
    return "otpauth-migration://offline?data=" + quote(data, safe="")


def activation(rng):
    code = "".join(rng.choice("0123456789") for _ in range(9))
    if rng.random() < 0.5:
        url = f"https://mobileappcommunicator.auth.example.test/activate?tenant={rng.randrange(10**6)}"
        return f"phonefactor://activate_account?code={code}&url={quote(url, safe='')}"
    return f"https://mysignins.example.test/authenticatorApp/activateAccount?code={code}&url={quote('https://push.example.test/a/' + str(rng.randrange(10**6)), safe='')}"


def payload(rng, dense=False):
    if dense:
        return migration(rng, rng.randrange(6, 11))
    roll = rng.random()
    if roll < 0.6:
        return otpauth(rng)
    if roll < 0.8:
        return migration(rng, rng.randrange(1, 4))
    return activation(rng)


# --- drawing --------------------------------------------------------------

def qr(text, box, ecc=ERROR_CORRECT_M, border=4):
    code = qrcode.QRCode(error_correction=ecc, box_size=box, border=border)
    code.add_data(text.encode())
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L"), code.modules_count


def page(rng, size, dark=False):
    """A plain web-page-like background: header bar, lines of 'text', boxes."""
    bg, ink = (30, 200) if dark else (255, 60)
    return shaded_page(rng, size, bg, ink, 45 if dark else 0x25)


def shaded_page(rng, size, bg, ink, bar):
    """page() with its greys given: background, text and boxes, header bar."""
    image = Image.new("L", size, bg)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle([0, 0, w, int(h * 0.06)], fill=bar)
    y = int(h * 0.1)
    while y < h - 40:
        x = int(w * rng.uniform(0.03, 0.08))
        for _ in range(rng.randrange(5, 14)):
            word = rng.randrange(int(w * 0.01), int(w * 0.05))
            if x + word > w * 0.95:
                break
            draw.rectangle([x, y, x + word, y + max(4, h // 160)], fill=ink)
            x += word + max(6, w // 250)
        y += max(12, h // 40)
    for _ in range(4):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        draw.rectangle([x0, y0, x0 + rng.randrange(20, max(21, w // 8)), y0 + rng.randrange(10, max(11, h // 10))],
                       outline=ink, width=2)
    return image


def paste_scaled(canvas, code, modules_px, modules, at):
    """Pastes a QR image resized (anti-aliased) so one module is `modules_px` pixels."""
    side = max(8, round((modules + 8) * modules_px))
    scaled = code.resize((side, side), Image.Resampling.BILINEAR)
    canvas.paste(scaled, at)
    return side


def place(rng, canvas, code, modules, modules_px, top=0):
    """Pastes the code, scaled, at a random place with its top at or below `top`."""
    side = round((modules + 8) * modules_px)
    at = (rng.randrange(0, canvas.width - side), rng.randrange(top, canvas.height - side))
    paste_scaled(canvas, code, modules_px, modules, at)


def save(category, index, image, fmt="png", quality=None):
    folder = OUT / category
    folder.mkdir(exist_ok=True)
    name = f"{category}/{index:02d}.{fmt}"
    if fmt == "jpg":
        image.convert("RGB").save(OUT / name, "JPEG", quality=quality or 85)
    else:
        image.save(OUT / name, optimize=True)
    return name


def warp(image, quad, size, fill=255):
    """Maps `image` onto the quadrilateral `quad` of a `size` canvas."""
    w, h = image.size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    # Solve for the transform from canvas coordinates back to source ones.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(quad, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y]); rhs.append(v)
    coeffs = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    return image.transform(size, Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC, fillcolor=fill)


def noise(image, rng_np, sigma):
    data = np.asarray(image, dtype=np.float32) + rng_np.normal(0, sigma, (image.size[1], image.size[0]))
    return Image.fromarray(np.clip(data, 0, 255).astype(np.uint8))


# --- categories -----------------------------------------------------------

def clean(rng, _np, i):
    text = payload(rng, dense=i >= PER_CATEGORY - 2)
    code, _ = qr(text, rng.randrange(3, 9), rng.choice(ECC))
    return code, [text], "png"


def screenshot(rng, _np, i):
    text = payload(rng, dense=i == PER_CATEGORY - 1)
    canvas = page(rng, (3840, 2160), dark=False)
    code, modules = qr(text, 10, rng.choice(ECC))
    px = rng.uniform(3.0, 5.0)
    place(rng, canvas, code, modules, px, top=200)
    return canvas, [text], "png"


def inverted(rng, _np, i):
    text = payload(rng)
    code, modules = qr(text, 10, rng.choice(ECC))
    if i % 2 == 0:
        return ImageOps.invert(code.resize((code.width * 6 // 10,) * 2, Image.Resampling.BILINEAR)), [text], "png"
    # A dark-mode page: light-grey modules on a dark grey background.
    canvas = page(rng, (1600, 1000), dark=True)
    px = rng.uniform(3.0, 6.0)
    light = ImageOps.invert(code).point(lambda v: 30 + v * 190 // 255)
    place(rng, canvas, light, modules, px, top=80)
    return canvas, [text], "png"


def rotated(rng, _np, i):
    text = payload(rng)
    code, _ = qr(text, rng.randrange(4, 8), rng.choice(ECC))
    angle = rng.uniform(5, 355)
    return code.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255), [text], "png"


def perspective(rng, np_rng, i):
    text = payload(rng)
    code, _ = qr(text, 8, rng.choice(ECC))
    size = (1280, 960)
    cx, cy, r = 640, 480, rng.uniform(250, 400)
    quad = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    # Look at the card from one side: that side shortens, as a tilted plane does.
    side = rng.randrange(4)
    a, b = side, (side + 1) % 4
    shrink = rng.uniform(0.15, 0.3)
    (ax, ay), (bx, by) = quad[a], quad[b]
    quad[a] = (ax + (bx - ax) * shrink, ay + (by - ay) * shrink)
    quad[b] = (bx + (ax - bx) * shrink, by + (ay - by) * shrink)
    quad = [(x + rng.uniform(-0.05, 0.05) * r, y + rng.uniform(-0.05, 0.05) * r) for x, y in quad]
    image = warp(code, quad, size, fill=235)
    return noise(image, np_rng, 6), [text], "jpg"


def blurred(rng, _np, i):
    text = payload(rng)
    box = rng.randrange(5, 9)
    code, _ = qr(text, box, rng.choice(ECC))
    return code.filter(ImageFilter.GaussianBlur(box * rng.uniform(0.3, 0.55))), [text], "png"


def noisy(rng, np_rng, i):
    text = payload(rng)
    code, _ = qr(text, rng.randrange(4, 8), rng.choice(ECC))
    if i % 2 == 0:
        return noise(code, np_rng, rng.uniform(35, 60)), [text], "png"
    # Low contrast under uneven light: modules 110, paper 170, a gradient on top.
    low = np.asarray(code, dtype=np.float32) * (60 / 255) + 110
    ramp = np.linspace(-35, 35, code.size[0])[None, :]
    return noise(Image.fromarray(np.clip(low + ramp, 0, 255).astype(np.uint8)), np_rng, 8), [text], "png"


def jpeg(rng, np_rng, i):
    text = payload(rng, dense=i == PER_CATEGORY - 1)
    code, modules = qr(text, 10, rng.choice(ECC))
    if i < 2:
        # A 12 MP photo of a printout: big, soft, a little noisy.
        canvas = noise(Image.new("L", (4000, 3000), 200), np_rng, 4)
        px = rng.uniform(14, 22)
        place(rng, canvas, code.filter(ImageFilter.GaussianBlur(1)), modules, px)
        return canvas.filter(ImageFilter.GaussianBlur(2)), [text], "jpg"
    canvas = page(rng, (1400, 900))
    px = rng.uniform(3.5, 6)
    place(rng, canvas, code, modules, px, top=60)
    return canvas, [text], "jpg"


def downscaled(rng, _np, i):
    text = payload(rng)
    code, modules = qr(text, 10, rng.choice(ECC))
    px = rng.uniform(1.8, 2.3)
    side = round((modules + 8) * px)
    return code.resize((side, side), Image.Resampling.BOX), [text], "png"


def logo(rng, _np, i):
    text = payload(rng)
    code, modules = qr(text, rng.randrange(5, 9), ERROR_CORRECT_H)
    w = code.width
    box = int(w * rng.uniform(0.18, 0.24))
    draw = ImageDraw.Draw(code)
    x0 = (w - box) // 2
    draw.rounded_rectangle([x0, x0, x0 + box, x0 + box], radius=box // 5, fill=255)
    inset = box // 6
    draw.ellipse([x0 + inset, x0 + inset, x0 + box - inset, x0 + box - inset], fill=90)
    return code, [text], "png"


def multi(rng, _np, i):
    count = 2 + i % 3
    texts = [payload(rng) for _ in range(count)]
    canvas = page(rng, (1920, 1080))
    x = 40
    for text in texts:
        code, modules = qr(text, 10, rng.choice(ECC))
        px = rng.uniform(4, 6)
        side = round((modules + 8) * px)
        if x + side > 1920:
            raise RuntimeError("codes do not fit side by side; lower the module size")
        paste_scaled(canvas, code, px, modules, (x, rng.randrange(80, 1080 - side)))
        x += side + rng.randrange(10, 60)
    return canvas, texts, "png"


def none(rng, np_rng, i):
    kind = i % 4
    if kind == 0:
        return page(rng, (1920, 1080), dark=i % 8 == 4), [], "png"
    if kind == 1:
        return noise(Image.new("L", (480, 360), 128), np_rng, 60), [], "png"
    if kind == 2:
        # Finder-pattern look-alikes (three nested squares) with no code between them.
        image = Image.new("L", (900, 900), 255)
        draw = ImageDraw.Draw(image)
        for (x, y) in [(100, 100), (600, 100), (100, 600)]:
            draw.rectangle([x, y, x + 210, y + 210], fill=0)
            draw.rectangle([x + 30, y + 30, x + 180, y + 180], fill=255)
            draw.rectangle([x + 60, y + 60, x + 150, y + 150], fill=0)
        return image, [], "png"
    # A checkerboard photographed as JPEG.
    board = ((np.indices((600, 600)) // 25).sum(axis=0) % 2 * 255).astype(np.uint8)
    return Image.fromarray(board), [], "jpg"


CATEGORIES = [
    ("clean", clean), ("screenshot", screenshot), ("inverted", inverted), ("rotated", rotated),
    ("perspective", perspective), ("blurred", blurred), ("noisy", noisy), ("jpeg25", jpeg),
    ("downscaled", downscaled), ("logo", logo), ("multi", multi), ("none", none),
]


def regression():
    """The committed 96-image set, into tests/corpus/."""
    expected = {}
    for seed, (category, make) in enumerate(CATEGORIES):
        rng, np_rng = random.Random(seed), np.random.default_rng(seed)
        for i in range(PER_CATEGORY):
            image, texts, fmt = make(rng, np_rng, i)
            name = save(category, i, image, fmt, quality=25 if category == "jpeg25" else None)
            expected[name] = texts
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(expected)} images in {len(CATEGORIES)} categories", file=sys.stderr)


# === the wide set =========================================================
#
# It reuses the payloads and the page drawing above; whatever the regression
# set draws with must keep drawing the same bytes, so the wide set's own
# variants live below: render (any quiet zone, ECC H, float module sizes,
# filters), project (warp with a portable solver), grain (float32 noise).

NEAREST, BILINEAR, BICUBIC = Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC
BOX, LANCZOS = Image.Resampling.BOX, Image.Resampling.LANCZOS
WIDE_ECC = [ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q, ERROR_CORRECT_H]
WIDE_PER_CATEGORY = 45


def symbol(rng, text, version=None):
    """The module matrix (True = dark, no quiet zone) of `text` at a random ECC
    level; `version` is the smallest version to use."""
    code = qrcode.QRCode(version=version, error_correction=rng.choice(WIDE_ECC), box_size=1, border=0)
    code.add_data(text.encode())
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=bool)


def render(matrix, px, border=4, resample=BILINEAR, dark=0, light=255):
    """The code with `border` modules of quiet zone, `px` (any float) pixels a
    module. NEAREST maps modules to whole pixels (uneven when px is not an
    integer, as a browser's nearest-neighbour zoom does); other filters draw it
    sharp at >= 10 px a module and resample that, anti-aliased."""
    grid = np.pad(matrix, border)
    n = grid.shape[0]
    sharp = Image.fromarray(np.where(grid, dark, light).astype(np.uint8))
    side = max(n, round(n * px))
    if resample == NEAREST:
        return sharp.resize((side, side), NEAREST)
    k = max(10, math.ceil(px))
    return sharp.resize((n * k, n * k), NEAREST).resize((side, side), resample)


def free_spot(rng, size, box, taken=(), gap=0, top=0, margin=0, tries=300):
    """A random top-left corner for a `box` (w, h) inside `size`, at least `gap`
    pixels away from every rectangle in `taken`; None if none is found."""
    (W, H), (w, h) = size, box
    y_min = max(top, margin)
    if w + 2 * margin > W or h + y_min + margin > H:
        return None
    for _ in range(tries):
        x, y = rng.randint(margin, W - w - margin), rng.randint(y_min, H - h - margin)
        if all(x + w + gap <= a0 or a1 + gap <= x or y + h + gap <= b0 or b1 + gap <= y for a0, b0, a1, b1 in taken):
            return x, y
    return None


def on_page(rng, code, size, colors=(255, 60, 0x25), mask=None):
    """A page of `size` (grown to hold the code) with the code pasted below its header."""
    W, H = max(size[0], code.width + 40), max(size[1], math.ceil((code.height + 20) / 0.92))
    canvas = shaded_page(rng, (W, H), *colors)
    at = free_spot(rng, (W, H), code.size, top=int(H * 0.07), margin=10)
    assert at is not None
    canvas.paste(code, at, mask)
    return canvas, at


def dark_colors(rng):
    """Background, text and header greys of a dark-mode page."""
    bg = rng.randint(8, 60)
    return bg, rng.randint(140, 230), min(255, bg + rng.randint(6, 30))


def grain(image, np_rng, sigma):
    """Adds Gaussian noise (float32, so a 12 MP image stays quick)."""
    data = np.asarray(image, np.float32)
    data = data + np_rng.standard_normal(data.shape, dtype=np.float32) * np.float32(sigma)
    return Image.fromarray(np.clip(data + 0.5, 0, 255).astype(np.uint8))


def salt_pepper(image, np_rng, fraction):
    data = np.array(image)
    hit = np_rng.random(data.shape) < fraction
    data[hit] = np.where(np_rng.random(int(hit.sum())) < 0.5, 0, 255)
    return Image.fromarray(data)


def motion(image, length, angle):
    """A box blur `length` pixels long in direction `angle` (degrees): a shaken camera or hand."""
    data = np.asarray(image, np.float32)
    h, w = data.shape
    steps = max(2, round(length))
    pad = steps + 1
    padded = np.pad(data, pad, mode="edge")
    acc = np.zeros_like(data)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for k in range(steps):
        t = k - (steps - 1) / 2
        dx, dy = round(t * c), round(t * s)
        acc += padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    return Image.fromarray(np.clip(acc / steps + 0.5, 0, 255).astype(np.uint8))


def light(image, rng, linear=0.0, radial=0.0):
    """Uneven light: a gain falling linearly by `linear` across the image in a
    random direction, times a vignette darkening by `radial` towards the corners
    around a point near the middle."""
    w, h = image.size
    sw, sh = 64, max(2, round(64 * h / w))
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xs /= sw - 1
    ys /= sh - 1
    a = rng.uniform(0, 2 * math.pi)
    t = xs * math.cos(a) + ys * math.sin(a)
    gain = 1 - linear * (t - t.min()) / (t.max() - t.min())
    cx, cy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    r2 = (xs - cx) ** 2 + ((ys - cy) * h / w) ** 2
    gain = gain * (1 - radial * r2 / r2.max())
    field = np.asarray(Image.fromarray(gain.astype(np.float32)).resize((w, h), BILINEAR))
    data = np.asarray(image, np.float32)
    data = data * (field if data.ndim == 2 else field[..., None])
    return Image.fromarray(np.clip(data + 0.5, 0, 255).astype(np.uint8))


def tint(image, dark, light_rgb):
    """Colours an L image: 0 becomes the RGB `dark`, 255 `light_rgb`, linearly between."""
    return Image.merge("RGB", [image.point([d + (l - d) * v // 255 for v in range(256)])
                               for d, l in zip(dark, light_rgb)])


def mottle(rng, np_rng, size, base, amp):
    """A flat surface (desk, wall) with soft, low-frequency unevenness."""
    small = base + amp * np_rng.standard_normal((rng.randint(3, 7), rng.randint(3, 7)))
    big = Image.fromarray(small.astype(np.float32)).resize(size, BICUBIC)
    return Image.fromarray(np.clip(np.asarray(big), 0, 255).astype(np.uint8))


def busy(rng, np_rng, size):
    """A cluttered picture: overlapping grey blocks, bars and lines, some noise."""
    W, H = size
    image = Image.new("L", size, rng.randint(90, 230))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(40, 110)):
        x0, y0 = rng.randrange(-W // 10, W), rng.randrange(-H // 10, H)
        x1, y1 = x0 + rng.randint(5, W // 4), y0 + rng.randint(5, H // 4)
        kind = rng.random()
        if kind < 0.5:
            draw.rectangle([x0, y0, x1, y1], fill=rng.randint(0, 255))
        elif kind < 0.8:
            draw.line([x0, y0, x1, y1], fill=rng.randint(0, 255), width=rng.randint(1, 8))
        else:
            draw.ellipse([x0, y0, x1, y1], outline=rng.randint(0, 255), width=rng.randint(1, 6))
    return grain(image, np_rng, rng.uniform(3, 14))


def solve(rows, rhs):
    """Gaussian elimination in plain Python floats: unlike LAPACK, the same bits
    on every machine."""
    a = [row[:] + [b] for row, b in zip(rows, rhs)]
    n = len(a)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
    return [a[r][n] / a[r][r] for r in range(n)]


def homography(src, dst):
    """The projective map taking the four points `src` to `dst`, as the eight
    coefficients PIL's PERSPECTIVE transform takes."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y]); rhs.append(v)
    return solve(rows, rhs)


def apply(hom, points):
    a, b, c, d, e, f, g, h = hom
    return [((a * x + b * y + c) / (g * x + h * y + 1), (d * x + e * y + f) / (g * x + h * y + 1)) for x, y in points]


def project(image, quad, size, fill):
    """warp() for the wide set: maps `image` onto `quad` of a `size` canvas."""
    w, h = image.size
    coeffs = homography(quad, [(0, 0), (w, 0), (w, h), (0, h)])
    return image.transform(size, Image.Transform.PERSPECTIVE, tuple(coeffs), BICUBIC, fillcolor=fill)


def view(rng, size, centre, tilt, angle, jitter):
    """Corners of a `size` picture seen at a slant: tilt (tx, ty) shortens the
    right (tx > 0) or left side by |tx| and the bottom or top by |ty|, as a plane
    turned away from the camera; then turned by `angle` degrees about `centre`,
    each corner moved by up to `jitter` of the width."""
    w, h = size
    (tx, ty), c, s = tilt, math.cos(math.radians(angle)), math.sin(math.radians(angle))
    quad = []
    for sx, sy in [(-1, -1), (1, -1), (1, 1), (-1, 1)]:
        fy = 1 - abs(tx) * (0.5 + 0.5 * sx * math.copysign(1, tx))
        fx = 1 - abs(ty) * (0.5 + 0.5 * sy * math.copysign(1, ty))
        x, y = sx * w / 2 * fx, sy * h / 2 * fy
        quad.append((centre[0] + x * c - y * s + jitter * w * rng.uniform(-1, 1),
                     centre[1] + x * s + y * c + jitter * w * rng.uniform(-1, 1)))
    return quad


def keep_in_frame(quad, size, picture_size, box, margin):
    """Moves (and if need be shrinks) `quad` so that the rectangle `box` of the
    picture it shows lands inside the frame `size`, `margin` pixels in."""
    W, H = size
    w, h = picture_size
    x0, y0, x1, y1 = box
    for _ in range(20):
        hom = homography([(0, 0), (w, 0), (w, h), (0, h)], quad)
        corners = apply(hom, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
        scale = min(1.0, (W - 2 * margin) / span_x, (H - 2 * margin) / span_y)
        if scale < 1:
            cx, cy = sum(xs) / 4, sum(ys) / 4
            quad = [(cx + (x - cx) * scale * 0.98, cy + (y - cy) * scale * 0.98) for x, y in quad]
            continue
        dx = max(0, margin - min(xs)) - max(0, max(xs) - (W - margin))
        dy = max(0, margin - min(ys)) - max(0, max(ys) - (H - margin))
        if dx == 0 and dy == 0:
            return quad
        quad = [(x + dx, y + dy) for x, y in quad]
    return quad


def warp_onto(canvas, picture, quad):
    """Draws `picture` onto `canvas` mapped to the quadrilateral `quad`."""
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    size = (math.ceil(max(xs)) - x0 + 1, math.ceil(max(ys)) - y0 + 1)
    local = [(x - x0, y - y0) for x, y in quad]
    canvas.paste(project(picture, local, size, 0), (x0, y0), project(Image.new("L", picture.size, 255), local, size, 0))


def printout(rng, matrix, mp, border, paper_max):
    """A sheet of paper with the code printed on it, `mp` pixels a module, among
    lines of text; returns it and the code's box on it."""
    paper_grey = rng.randint(235, 255)
    code = render(matrix, mp, border, BILINEAR, dark=rng.randint(0, 50), light=paper_grey)
    side = code.width
    pw = round(min(side * rng.uniform(1.15, 1.9), paper_max[0]))
    ph = round(min(pw * rng.uniform(1.2, 1.45), paper_max[1]))
    pw, ph = max(pw, side + 20), max(ph, side + 20)
    paper = shaded_page(rng, (pw, ph), paper_grey, rng.randint(30, 100), paper_grey)
    x, y = rng.randint(10, pw - side - 10), rng.randint(10, ph - side - 10)
    paper.paste(code, (x, y))
    return paper, (x, y, x + side, y + side)


def screen(rng, matrix, mp, border, dark):
    """A monitor showing a page with the code (dark mode: light code on dark),
    in a dark bezel; returns it and the code's box on it."""
    if dark:
        colors = dark_colors(rng)
        code = render(matrix, mp, border, BILINEAR, dark=rng.randint(170, 235), light=colors[0])
    else:
        colors = (rng.randint(235, 255), rng.randint(30, 90), rng.randint(20, 120))
        code = render(matrix, mp, border, BILINEAR)
    side = code.width
    sw = round(side * rng.uniform(1.5, 2.6))
    sh = max(round(sw * rng.uniform(0.56, 0.66)), side + 30)
    sw = max(sw, side + 30)
    content, (x, y) = on_page(rng, code, (sw, sh), colors)
    bezel = round(max(content.size) * rng.uniform(0.02, 0.05))
    frame = Image.new("L", (content.width + 2 * bezel, content.height + 2 * bezel), rng.randint(10, 40))
    frame.paste(content, (bezel, bezel))
    return frame, (x + bezel, y + bezel, x + bezel + side, y + bezel + side)


def photograph(rng, np_rng, size, subject, box, module_px):
    """A phone-camera photo of `subject` lying on a desk: a slant, perspective,
    uneven light, defocus, sensor noise and a colour cast; `box` (the code on
    the subject, or None) is kept inside the frame."""
    W, H = size
    desk = mottle(rng, np_rng, size, rng.randint(40, 170), rng.uniform(5, 25))
    tilt = (rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2))
    angle = rng.uniform(-15, 15) + rng.choice([0, 0, 0, 0, 90, -90, 180])
    centre = (W * rng.uniform(0.4, 0.6), H * rng.uniform(0.4, 0.6))
    quad = view(rng, subject.size, centre, tilt, angle, 0.02)
    if box is not None:
        quad = keep_in_frame(quad, size, subject.size, box, margin=round(module_px * 2))
    warp_onto(desk, subject, quad)
    image = light(desk, rng, linear=rng.uniform(0, 0.45), radial=rng.uniform(0.1, 0.5))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.5) + module_px * rng.uniform(0, 0.18)))
    if rng.random() < 0.3:
        # A shaken hand.
        image = motion(image, module_px * rng.uniform(0.1, 0.35), rng.uniform(0, 180))
    image = grain(image, np_rng, rng.uniform(2, 7))
    cast = [rng.uniform(0.82, 1.0) for _ in range(3)]
    return tint(image, [rng.randint(0, 12) for _ in range(3)], [round(255 * c / max(cast)) for c in cast])


# --- wide categories: each (rng, np_rng, index) -> (image, payloads, "png"|"jpg", JPEG quality) ---

def w_clean(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.2)
    matrix = symbol(rng, text)
    border = rng.randint(1, 6)
    if rng.random() < 0.5:
        code = render(matrix, rng.randint(2, 10), border, NEAREST)
    else:
        code = render(matrix, rng.uniform(2, 10), border, rng.choice([BILINEAR, BILINEAR, LANCZOS]))
    if rng.random() < 0.25:
        code, _ = on_page(rng, code, (rng.randint(1024, 1920), rng.randint(700, 1080)))
    return code, [text], "png", None


def w_inverted(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    kind = i % 3
    if kind == 0:
        # A light-on-dark code on its own.
        bg = rng.randint(0, 70)
        fg = rng.randint(max(bg + 90, 150), 255)
        code = render(matrix, rng.uniform(2, 8), rng.randint(1, 6), rng.choice([NEAREST, BILINEAR]), dark=fg, light=bg)
        return code, [text], "png", None
    # A dark-mode page: light-grey modules on a dark grey background; kind 1 a 4K screenshot.
    colors = dark_colors(rng)
    panel = min(255, colors[0] + rng.choice([0, 0, rng.randint(5, 30)]))
    fg = rng.randint(min(255, max(panel + 80, 140)), 240)
    if kind == 1:
        size, px = (3840, 2160), rng.uniform(2.5, 6)
    else:
        size, px = rng.choice([(1280, 720), (1440, 900), (1920, 1080), (2560, 1440)]), rng.uniform(2, 5)
    code = render(matrix, px, rng.randint(2, 6), BILINEAR, dark=fg, light=panel)
    canvas, _ = on_page(rng, code, size, colors)
    return canvas, [text], "png", None


def w_rotated(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    px = rng.uniform(1.8, 2.6) if i % 4 == 1 else rng.uniform(2.5, 8)
    code = render(matrix, px, rng.randint(2, 5), BILINEAR)
    angle = rng.uniform(0, 360)
    turned = code.rotate(angle, BICUBIC, expand=True, fillcolor=255)
    if i % 3 == 2:
        mask = Image.new("L", code.size, 255).rotate(angle, BILINEAR, expand=True, fillcolor=0)
        canvas, _ = on_page(rng, turned, (rng.randint(1024, 1920), rng.randint(700, 1080)), mask=mask)
        return canvas, [text], "png", None
    return turned, [text], "png", None


def w_perspective(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    n = matrix.shape[0]
    W, H = rng.choice([(1280, 960), (1600, 1200), (1920, 1080), (2048, 1536), (1080, 1440)])
    border = rng.randint(2, 5)
    mp = min(rng.uniform(2.8, 9), 0.55 * min(W, H) / (n + 2 * border))
    if i % 2 == 0:
        # A card or sheet held up to the camera.
        subject, box = printout(rng, matrix, mp, border, (0.85 * W, 0.85 * H))
    else:
        # A screen filmed at an angle.
        subject, box = screen(rng, matrix, mp, border, dark=rng.random() < 0.3)
        scale = min(1.0, 0.9 * W / subject.width, 0.9 * H / subject.height)
        if scale < 1:
            subject = subject.resize((round(subject.width * scale), round(subject.height * scale)), BILINEAR)
            box = tuple(v * scale for v in box)
    canvas = mottle(rng, np_rng, (W, H), rng.randint(30, 200), rng.uniform(3, 20))
    strength = rng.uniform(0.05, 0.45)
    tilt = (math.copysign(strength, rng.random() - 0.5), rng.uniform(-0.25, 0.25))
    quad = view(rng, subject.size, (W / 2, H / 2), tilt, rng.uniform(-30, 30), rng.uniform(0, 0.04))
    quad = keep_in_frame(quad, (W, H), subject.size, box, margin=4)
    warp_onto(canvas, subject, quad)
    if rng.random() < 0.4:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    canvas = grain(canvas, np_rng, rng.uniform(0, 10))
    if rng.random() < 0.4:
        return canvas, [text], "jpg", rng.randint(50, 90)
    return canvas, [text], "png", None


def w_blurred(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    px = rng.uniform(3, 10)
    image = render(matrix, px, rng.randint(2, 5), BILINEAR)
    if i % 4 == 3:
        image, _ = on_page(rng, image, (rng.randint(1024, 1920), rng.randint(700, 1080)))
    if i % 3 == 2:
        # Motion: a streak of 0.4-1.2 modules in any direction, slightly defocused too.
        image = motion(image, px * rng.uniform(0.4, 1.2), rng.uniform(0, 180))
        image = image.filter(ImageFilter.GaussianBlur(px * rng.uniform(0, 0.15)))
    else:
        image = image.filter(ImageFilter.GaussianBlur(px * rng.uniform(0.2, 0.6)))
    return grain(image, np_rng, rng.uniform(0, 3)), [text], "png", None


def w_noisy(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    px, border = rng.uniform(3, 8), rng.randint(2, 5)
    kind = i % 5
    if kind == 2:
        # Low contrast: a grey code on a slightly lighter grey.
        dark = rng.randint(50, 150)
        image = render(matrix, px, border, BILINEAR, dark=dark, light=dark + rng.randint(30, 80))
    else:
        image = render(matrix, px, border, BILINEAR)
    if rng.random() < 0.3:
        image, _ = on_page(rng, image, (rng.randint(1024, 1600), rng.randint(700, 1000)))
    if kind == 0:
        return grain(image, np_rng, rng.uniform(20, 60)), [text], "png", None
    if kind == 1:
        image = salt_pepper(image, np_rng, rng.uniform(0.02, 0.12))
        return grain(image, np_rng, rng.uniform(0, 5)), [text], "png", None
    if kind == 2:
        return grain(image, np_rng, rng.uniform(2, 6)), [text], "png", None
    if kind == 3:
        image = light(image, rng, linear=rng.uniform(0.3, 0.75), radial=rng.uniform(0, 0.2))
    else:
        image = light(image, rng, linear=rng.uniform(0, 0.2), radial=rng.uniform(0.3, 0.75))
    return grain(image, np_rng, rng.uniform(3, 10)), [text], "png", None


def w_jpeg(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.2)
    matrix = symbol(rng, text)
    quality = rng.randint(15, 70)
    if i % 5 == 4:
        size, px = rng.choice([(2560, 1440), (3840, 2160)]), rng.uniform(2.5, 5)
    else:
        size, px = (rng.randint(800, 1920), rng.randint(600, 1200)), rng.uniform(2.5, 7)
    dark = rng.random() < 0.15
    colors = dark_colors(rng) if dark else (255, rng.randint(30, 90), rng.randint(20, 120))
    code = render(matrix, px, rng.randint(2, 4), BILINEAR, *((230, colors[0]) if dark else (0, 255)))
    canvas, at = on_page(rng, code, size, colors)
    chroma = rng.random()
    if chroma < 0.2:
        # A tinted page with a neutral code on it.
        tinted = tint(canvas, [rng.randint(0, 90) for _ in range(3)], [rng.randint(200, 255) for _ in range(3)])
        tinted.paste(code.convert("RGB"), at)
        canvas = tinted
    elif chroma < 0.4:
        # Everything tinted: coloured modules on a coloured background.
        canvas = tint(canvas, [rng.randint(0, 90) for _ in range(3)], [rng.randint(200, 255) for _ in range(3)])
    return canvas, [text], "jpg", quality


def w_downscaled(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    px = rng.uniform(1.5, 3.0)
    roll = rng.random()
    resample = BILINEAR if roll < 0.7 else BOX if roll < 0.85 else LANCZOS
    if i % 2 == 0:
        # The code alone, drawn sharp and shrunk.
        return render(matrix, px, rng.randint(2, 4), resample), [text], "png", None
    # A whole page shrunk by 1.5-3x (a zoomed-out browser, a scaled screenshot).
    factor = rng.uniform(1.5, 3.0)
    W, H = rng.randint(900, 1600), rng.randint(600, 1000)
    big, _ = on_page(rng, render(matrix, px * factor, rng.randint(2, 4), BILINEAR),
                     (round(W * factor), round(H * factor)))
    small = big.resize((round(big.width / factor), round(big.height / factor)), resample)
    return small, [text], "png", None


def w_multi(rng, np_rng, i):
    count = 2 + i % 3
    W, H = rng.choice([(1920, 1080), (2560, 1440), (1600, 1200), (3840, 2160)])
    dark = rng.random() < 0.15
    colors = dark_colors(rng) if dark else (255, 60, 0x25)
    canvas = shaded_page(rng, (W, H), *colors)
    # Each code gets its own band of module sizes, so no two are alike.
    bands = [2.5 + 5.5 * k / count for k in range(count)]
    rng.shuffle(bands)
    texts, taken = [], []
    for band in bands:
        text = payload(rng, dense=rng.random() < 0.2)
        while text in texts:
            text = payload(rng)
        matrix = symbol(rng, text, version=rng.choice([None, None, rng.randint(2, 10)]))
        px, border = rng.uniform(band, band + 5.5 / count), rng.randint(2, 4)
        fg, bg = (rng.randint(170, 235), colors[0]) if dark else (0, 255)
        for _ in range(30):
            code = render(matrix, px, border, BILINEAR, dark=fg, light=bg)
            at = free_spot(rng, (W, H), code.size, taken, gap=round(2 * px), top=int(H * 0.07), margin=5)
            if at:
                break
            px = max(2.5, px * 0.9)
        else:
            raise RuntimeError("multi: no room for the codes")
        canvas.paste(code, at)
        taken.append((at[0], at[1], at[0] + code.width, at[1] + code.height))
        texts.append(text)
    return canvas, texts, "png", None


PHOTO_SIZES = [(4000, 3000), (3000, 4000), (4032, 3024), (3264, 2448), (2448, 3264), (3840, 2160)]


def w_photo(rng, np_rng, i):
    W, H = rng.choices(PHOTO_SIZES, weights=[4, 1, 1, 2, 1, 1])[0]
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    border = rng.randint(2, 4)
    mp = min(rng.uniform(6, 25), 0.6 * min(W, H) / (matrix.shape[0] + 2 * border))
    if rng.random() < 0.6:
        subject, box = printout(rng, matrix, mp, border, (0.88 * W, 0.88 * H))
    else:
        subject, box = screen(rng, matrix, mp, border, dark=rng.random() < 0.3)
    image = photograph(rng, np_rng, (W, H), subject, box, mp)
    return image, [text], "jpg", rng.randint(70, 92)


def intrude(rng, draw, sym, px, sides, ink):
    """Draws text, rules or boxes on `sides` of the symbol rectangle `sym`, from
    touching it to one module away: into where its quiet zone should be."""
    x0, y0, x1, y1 = sym
    for side in sides:
        gap = 0 if rng.random() < 0.3 else px * rng.uniform(0.2, 1.0)
        what = rng.choice(["text", "text", "rule", "box"])
        if what == "box":
            draw.rectangle([x0 - gap - 2, y0 - gap - 2, x1 + gap + 1, y1 + gap + 1], outline=ink, width=2)
            continue
        horizontal = side in ("top", "bottom")
        length = (x1 - x0) if horizontal else (y1 - y0)
        start = -rng.uniform(0, 0.5) * length
        thick = px * rng.uniform(0.5, 1.5) if what == "text" else rng.uniform(1, 4)
        pos = 0.0
        while start + pos < length * rng.uniform(1.0, 1.5):
            run = length * rng.uniform(0.05, 0.2) if what == "text" else length * 2
            a, b = start + pos, start + pos + run
            if side == "top":
                box = [x0 + a, y0 - gap - thick, x0 + b, y0 - gap - 1]
            elif side == "bottom":
                box = [x0 + a, y1 + gap, x0 + b, y1 + gap + thick - 1]
            elif side == "left":
                box = [x0 - gap - thick, y0 + a, x0 - gap - 1, y0 + b]
            else:
                box = [x1 + gap, y0 + a, x1 + gap + thick - 1, y0 + b]
            draw.rectangle(box, fill=ink)
            pos += run + px * rng.uniform(0.5, 2)


def w_quiet(rng, np_rng, i):
    text = payload(rng, dense=rng.random() < 0.15)
    matrix = symbol(rng, text)
    n = matrix.shape[0]
    px, border = rng.uniform(3, 8), rng.choice([0, 1, 1])
    code = render(matrix, px, border, BILINEAR)
    side, inset = code.width, border * px
    room = side + side // 2 + 20
    W, H = max(rng.randint(1024, 1920), room), max(rng.randint(700, 1080), room)
    kind = i % 3
    if kind == 1:
        # Against the image edge: a corner or an edge of the picture cuts the
        # quiet zone away, a busy page around the rest.
        canvas = page(rng, (W, H))
        edges = rng.choice([["left"], ["top"], ["right"], ["bottom"], ["left", "top"], ["right", "bottom"],
                            ["left", "bottom"], ["right", "top"]])
        x, y = rng.randint(side // 4, W - side - side // 4), rng.randint(side // 4, H - side - side // 4)
        x = -round(inset) if "left" in edges else W - side + round(inset) if "right" in edges else x
        y = -round(inset) if "top" in edges else H - side + round(inset) if "bottom" in edges else y
    else:
        # kind 0: a page with text crowding the code; kind 2: a cluttered picture.
        canvas = page(rng, (W, H)) if kind == 0 else busy(rng, np_rng, (W, H))
        edges = []
        x, y = rng.randint(side // 4, W - side - side // 4), rng.randint(side // 4, H - side - side // 4)
    canvas.paste(code, (x, y))
    sym = (x + inset, y + inset, x + inset + n * px, y + inset + n * px)
    others = [s for s in ("top", "bottom", "left", "right") if s not in edges]
    sides = rng.sample(others, rng.randint(0 if kind == 2 else 1, len(others)))
    intrude(rng, ImageDraw.Draw(canvas), sym, px, sides, rng.randint(0, 90))
    return canvas, [text], "png", None


def w_none(rng, np_rng, i):
    kind = i % 6
    if kind in (0, 1):
        # A page, light or dark mode, up to 4K.
        size = rng.choice([(1280, 800), (1920, 1080), (2560, 1440), (3840, 2160)])
        colors = dark_colors(rng) if kind == 1 else (rng.randint(235, 255), rng.randint(30, 100), rng.randint(0, 120))
        return shaded_page(rng, size, *colors), [], "png", None
    if kind == 2:
        # Noise: coarse or fine, grey or black-and-white.
        size = (rng.randint(320, 1280), rng.randint(240, 960))
        cell = rng.choice([1, 1, 2, 3, 5])
        small = np_rng.random(((size[1] + cell - 1) // cell, (size[0] + cell - 1) // cell))
        data = (small > 0.5) * 255 if rng.random() < 0.4 else small * 255
        image = Image.fromarray(np.kron(data, np.ones((cell, cell)))[:size[1], :size[0]].astype(np.uint8))
        return (image, [], "jpg", rng.randint(40, 90)) if rng.random() < 0.3 else (image, [], "png", None)
    if kind == 3:
        # Finder-pattern look-alikes (three nested squares), sometimes with a
        # random module grid between them: QR-like, but no code.
        cell = rng.randint(3, 12)
        grid = np.zeros((rng.randint(21, 45), rng.randint(21, 45)), bool)
        if rng.random() < 0.5:
            grid[:] = np_rng.random(grid.shape) < 0.5
        for (r, c) in [(0, 0), (0, grid.shape[1] - 7), (grid.shape[0] - 7, 0)]:
            grid[r:r + 7, c:c + 7] = False
            grid[r:r + 7, c] = grid[r:r + 7, c + 6] = grid[r, c:c + 7] = grid[r + 6, c:c + 7] = True
            grid[r + 2:r + 5, c + 2:c + 5] = True
        # Break the code-ness: no timing patterns, and a quiet-zone-free scramble at random.
        grid[6, 8:-8] = np_rng.random(grid.shape[1] - 16) < 0.5
        image = render(grid, cell, rng.randint(1, 4), NEAREST)
        if rng.random() < 0.5:
            image = image.rotate(rng.uniform(0, 360), BICUBIC, expand=True, fillcolor=255)
        return image, [], "png", None
    if kind == 4:
        # A checkerboard, maybe turned, soft, or JPEG'd.
        cell = rng.randint(4, 40)
        size = rng.randint(300, 900)
        board = ((np.indices((size, size)) // cell).sum(axis=0) % 2 * 255).astype(np.uint8)
        image = Image.fromarray(board)
        if rng.random() < 0.5:
            image = image.rotate(rng.uniform(0, 90), BICUBIC, fillcolor=255)
        if rng.random() < 0.4:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2)))
        return (image, [], "jpg", rng.randint(30, 90)) if rng.random() < 0.5 else (image, [], "png", None)
    # A photo of a printed page without a code.
    size = rng.choice([(2000, 1500), (3264, 2448), (4000, 3000)])
    sheet = shaded_page(rng, (round(size[0] * 0.55), round(size[0] * 0.55 * 1.41)), 250, rng.randint(30, 90), 250)
    return photograph(rng, np_rng, size, sheet, None, 8), [], "jpg", rng.randint(70, 92)


WIDE_CATEGORIES = [
    ("clean", w_clean), ("inverted", w_inverted), ("rotated", w_rotated), ("perspective", w_perspective),
    ("blurred", w_blurred), ("noisy", w_noisy), ("jpeg", w_jpeg), ("downscaled", w_downscaled),
    ("multi", w_multi), ("photo", w_photo), ("quiet", w_quiet), ("none", w_none),
]


def rngs(key):
    """The random.Random and numpy Generator of one image, from its key "<seed>/<category>/<index>"."""
    return random.Random(key), np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def wide_image(job):
    """Makes and saves one image of the wide set; returns its name and payloads."""
    out, seed, c, i = job
    category, make = WIDE_CATEGORIES[c]
    key = f"{seed}/{category}/{i}"
    rng, np_rng = rngs(key)
    try:
        image, texts, fmt, quality = make(rng, np_rng, i)
    except Exception as error:
        raise RuntimeError(f"image {key}: {error!r}") from error
    name = f"{category}/{i:02d}.{fmt}"
    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jpg":
        image.save(path, "JPEG", quality=quality)
    else:
        image.save(path, "PNG", optimize=False)
    return (c, i), (name, texts)


def wide(seed, out, per_category, jobs):
    out.mkdir(parents=True, exist_ok=True)
    # Heavy categories (photos) are spread over the run so the workers stay busy to the end.
    work = [(str(out), seed, c, i) for i in range(per_category) for c in range(len(WIDE_CATEGORIES))]
    if jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            made = dict(pool.imap_unordered(wide_image, work, chunksize=1))
    else:
        made = dict(map(wide_image, work))
    expected = dict(made[key] for key in sorted(made))
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    return sorted(expected) + ["expected.json"]


def manifest(out, names):
    return "".join(f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n" for name in sorted(names))


def check(text, want_file):
    want = dict((line[66:], line[:64]) for line in want_file.read_text().splitlines() if line.strip())
    have = dict((line[66:], line[:64]) for line in text.splitlines())
    problems = [f"  differs: {name}" for name in sorted(have) if name in want and have[name] != want[name]]
    problems += [f"  missing from the run: {name}" for name in sorted(set(want) - set(have))]
    problems += [f"  not in the manifest: {name}" for name in sorted(set(have) - set(want))]
    return problems


def main():
    parser = argparse.ArgumentParser(
        description="Builds the QR corpus. Without arguments: the committed regression set into tests/corpus/. "
                    "With --wide: the wide (unseen) set for a seed into a directory.")
    parser.add_argument("--wide", action="store_true", help="build the wide set (needs --seed and --out)")
    parser.add_argument("--seed", type=int, help="wide set: the seed (7 to develop on, 20261206 to report on)")
    parser.add_argument("--out", type=Path, help="wide set: the directory to write into (e.g. target/wide-7)")
    parser.add_argument("--per-category", type=int, default=WIDE_PER_CATEGORY, metavar="K",
                        help=f"wide set: images per category (default {WIDE_PER_CATEGORY})")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="J",
                        help="wide set: worker processes (default: up to 2); the output does not depend on it")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--write-hashes", type=Path, metavar="FILE",
                      help="wide set: write the sha256 manifest of the generated files to FILE")
    what.add_argument("--check", type=Path, metavar="FILE",
                      help="wide set: compare the generated files with the manifest FILE; exit 1 if they differ")
    args = parser.parse_args()
    if not args.wide:
        if any(v is not None for v in (args.seed, args.out, args.write_hashes, args.check)):
            parser.error("--seed, --out, --write-hashes and --check go with --wide")
        return regression()
    if args.seed is None or args.out is None:
        parser.error("--wide needs --seed and --out")
    if args.per_category < 1 or args.jobs < 1:
        parser.error("--per-category and --jobs must be at least 1")
    start = time.monotonic()
    names = wide(args.seed, args.out, args.per_category, args.jobs)
    print(f"wide set, seed {args.seed}: {len(names) - 1} images in {len(WIDE_CATEGORIES)} categories into "
          f"{args.out} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    if args.write_hashes or args.check:
        text = manifest(args.out, names)
    if args.write_hashes:
        args.write_hashes.write_text(text)
        print(f"wrote {args.write_hashes}", file=sys.stderr)
    if args.check:
        problems = check(text, args.check)
        if problems:
            print(f"{args.out} does not match {args.check} ({len(problems)} of {len(names)} files):", *problems,
                  sep="\n", file=sys.stderr)
            print("The wide set is regenerated, not stored, so its images depend on the Python packages: run it with "
                  "the versions pinned in tests/corpus/requirements.txt (tests/corpus/wide does). If make.py was "
                  "changed on purpose, rewrite the manifest with --write-hashes.", file=sys.stderr)
            sys.exit(1)
        print(f"{len(names)} files match {args.check}", file=sys.stderr)


if __name__ == "__main__":
    main()
