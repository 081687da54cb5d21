"""Images the sandbox serves itself, drawn with Pillow, so demos and tests have loopback URLs.

GET /_sandbox/images/face.jpg, face.png (640x480 drawn face), body.jpg (480x640 drawn person): made once at
startup. The sandbox knows where it drew the face and the person, so answers about these images put their
rectangles there. GET /_sandbox/images/blank-<W>x<H>.png: a blank PNG of any size up to 10000x10000 (limit tests).
GET /_sandbox/results/<label>-<W>x<H>-<hex>.png: the "result" of an image-editing action, rendered from its name
alone (no state), at most 1024 pixels on its longest side.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw

MAX_BLANK_SIDE = 10_000
MAX_RESULT_SIDE = 1024
BLANK_NAME = re.compile(r"^blank-(\d{1,5})x(\d{1,5})\.png$")
RESULT_NAME = re.compile(r"^([A-Za-z0-9]{1,64})-(\d{1,5})x(\d{1,5})-([0-9a-f]{8,64})\.png$")
SKIN = (224, 182, 150)
DARK = (60, 40, 30)
Box = tuple[int, int, int, int]  # left, top, width, height


@dataclass(frozen=True)
class Sample:
    data: bytes
    content_type: str
    faces: tuple[Box, ...]
    bodies: tuple[Box, ...]


def render_samples() -> dict[str, Sample]:
    face, body = _face(), _body()
    face_boxes, face_bodies = ((230, 100, 180, 250),), ((150, 70, 340, 410),)
    body_faces, body_bodies = ((200, 60, 80, 90),), ((110, 55, 260, 540),)
    return {
        "face.jpg": Sample(_encode(face, "JPEG"), "image/jpeg", face_boxes, face_bodies),
        "face.png": Sample(_encode(face, "PNG"), "image/png", face_boxes, face_bodies),
        "body.jpg": Sample(_encode(body, "JPEG"), "image/jpeg", body_faces, body_bodies),
    }


def render_blank(name: str) -> bytes | None:
    match = BLANK_NAME.match(name)
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_BLANK_SIDE and 1 <= height <= MAX_BLANK_SIDE):
        return None
    return _encode(Image.new("1", (width, height), 1), "PNG")


def result_name(label: str, width: int, height: int, seed: str) -> str:
    return f"{label}-{width}x{height}-{hashlib.sha256(seed.encode()).hexdigest()[:16]}.png"


def render_result(name: str) -> bytes | None:
    match = RESULT_NAME.match(name)
    if match is None:
        return None
    label, width, height, digest = match[1], int(match[2]), int(match[3]), match[4]
    if not (1 <= width <= MAX_BLANK_SIDE and 1 <= height <= MAX_BLANK_SIDE):
        return None
    scale = min(1.0, MAX_RESULT_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    colour = tuple(int(digest[i : i + 2], 16) for i in (0, 2, 4))
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), f"sandbox {label}", fill=(255, 255, 255))
    draw.ellipse(_box(size, 0.3, 0.2, 0.7, 0.8), outline=(255, 255, 255), width=3)
    return _encode(image, "PNG")


def _face() -> Image.Image:
    image = Image.new("RGB", (640, 480), (170, 200, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((215, 70, 425, 340), fill=DARK)  # hair
    draw.ellipse((230, 100, 410, 350), fill=SKIN)  # face
    for x in (280, 360):
        draw.ellipse((x - 18, 190, x + 18, 210), fill=(255, 255, 255))
        draw.ellipse((x - 7, 193, x + 7, 207), fill=DARK)
    draw.polygon([(320, 215), (305, 265), (335, 265)], fill=(205, 160, 130))  # nose
    draw.arc((275, 260, 365, 310), start=20, end=160, fill=(160, 60, 60), width=5)  # mouth
    draw.rectangle((270, 350, 370, 400), fill=SKIN)  # neck
    draw.pieslice((150, 380, 490, 640), start=180, end=360, fill=(40, 90, 160))  # shoulders
    return image


def _body() -> Image.Image:
    image = Image.new("RGB", (480, 640), (225, 230, 220))
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 60, 280, 150), fill=SKIN)
    draw.rectangle((190, 160, 290, 360), fill=(180, 50, 50))  # torso
    draw.line((190, 170, 120, 330), fill=SKIN, width=22)  # arms
    draw.line((290, 170, 360, 330), fill=SKIN, width=22)
    draw.rectangle((195, 360, 235, 590), fill=(40, 50, 90))  # legs
    draw.rectangle((245, 360, 285, 590), fill=(40, 50, 90))
    return image


def _box(size: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    return (int(size[0] * x0), int(size[1] * y0), int(size[0] * x1), int(size[1] * y1))


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()
