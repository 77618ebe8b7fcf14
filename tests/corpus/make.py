#!/usr/bin/env python3
"""Builds the QR scanning corpus in tests/corpus/ and its expected payloads.

Run it with tests/corpus/make (which makes a venv with the pinned versions in
requirements.txt). The output is committed: tests read expected.json and the
images, and never need Python. Everything is seeded, so a rerun with the same
versions writes the same files.

Each category holds images of one kind of difficulty a desktop user meets:
a page on screen, a screenshot, a photo of a printout, a dark-mode page, the
dense multi-account code Google Authenticator exports.
"""

import base64
import json
import random
import sys
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
    image = Image.new("L", size, bg)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle([0, 0, w, int(h * 0.06)], fill=(45 if dark else 0x25))
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


def main():
    expected = {}
    for seed, (category, make) in enumerate(CATEGORIES):
        rng, np_rng = random.Random(seed), np.random.default_rng(seed)
        for i in range(PER_CATEGORY):
            image, texts, fmt = make(rng, np_rng, i)
            name = save(category, i, image, fmt, quality=25 if category == "jpeg25" else None)
            expected[name] = texts
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(expected)} images in {len(CATEGORIES)} categories", file=sys.stderr)


if __name__ == "__main__":
    main()
