"""The built-in sample frames: a first and a last frame of one scene, in every format the service
accepts (api-facts §2: JPEG, JPG, PNG, BMP, WEBP), drawn with Pillow on first use and kept in
memory. They are served under ``/_mock/samples/<name>.<ext>`` on every listener and stand in for
the two sample URLs of the official API document, so its examples run offline unchanged."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

SAMPLES_PATH = "/_mock/samples"
NAMES = ("first", "last")
SIZE = (1280, 720)
# extension -> (Pillow format, MIME type); .jpg and .jpeg are both accepted spellings.
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpg": ("JPEG", "image/jpeg"),
    "jpeg": ("JPEG", "image/jpeg"),
    "bmp": ("BMP", "image/bmp"),
    "webp": ("WEBP", "image/webp"),
}
# The API document's own sample frames (its Python, Java and curl examples all use them). By default
# they resolve to the built-in frames, so the document's samples run offline with only the base URL
# changed (--no-doc-sample-urls turns this off: they are then fetched like any URL).
DOC_SAMPLE_URLS: dict[str, tuple[str, str]] = {
    "https://wanx.alicdn.com/material/20250318/first_frame.png": ("first", "png"),
    "https://wanx.alicdn.com/material/20250318/last_frame.png": ("last", "png"),
}


def file_name(name: str, ext: str) -> str:
    return f"{name}.{ext}"


def parse_file_name(file: str) -> tuple[str, str] | None:
    """``"first.png"`` -> ``("first", "png")``; None for anything that is not a sample."""
    name, dot, ext = file.rpartition(".")
    if dot and name in NAMES and ext in FORMATS:
        return name, ext
    return None


def mime_type(ext: str) -> str:
    return FORMATS[ext][1]


@lru_cache(maxsize=None)
def sample_bytes(name: str, ext: str) -> bytes:
    """The encoded sample (same bytes on every call in one installation)."""
    out = io.BytesIO()
    save = {"quality": 90} if FORMATS[ext][0] in ("JPEG", "WEBP") else {}
    _draw(name).save(out, format=FORMATS[ext][0], **save)
    return out.getvalue()


@lru_cache(maxsize=None)
def _draw(name: str) -> Image.Image:
    """One scene at two moments: a black cat on a wall under the sky, the sun low at first and
    high at the end (the document's own prompt is about a black cat looking at the sky)."""
    width, height = SIZE
    late = name == "last"
    top, bottom = ((40, 90, 170), (250, 190, 120)) if not late else ((70, 140, 220), (190, 220, 245))
    sky = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", SIZE, bottom), Image.new("RGB", SIZE, top), sky)
    draw = ImageDraw.Draw(image)
    sun_x, sun_y = (int(width * 0.22), int(height * 0.55)) if not late else (int(width * 0.7), int(height * 0.18))
    draw.ellipse((sun_x - 60, sun_y - 60, sun_x + 60, sun_y + 60), fill=(255, 236, 160))
    draw.rectangle((0, int(height * 0.72), width, height), fill=(120, 110, 100))  # the wall
    for x in range(0, width, 80):
        draw.line((x, int(height * 0.72), x, height), fill=(100, 92, 84), width=3)
    cx, base = int(width * 0.5), int(height * 0.72)
    draw.ellipse((cx - 90, base - 150, cx + 90, base + 10), fill=(20, 20, 24))  # body
    head_y = base - 190 if not late else base - 205
    draw.ellipse((cx - 55, head_y - 55, cx + 55, head_y + 55), fill=(20, 20, 24))  # head
    draw.polygon([(cx - 50, head_y - 30), (cx - 35, head_y - 95), (cx - 10, head_y - 45)], fill=(20, 20, 24))
    draw.polygon([(cx + 50, head_y - 30), (cx + 35, head_y - 95), (cx + 10, head_y - 45)], fill=(20, 20, 24))
    eye_dy = -14 if late else 0  # at the end the cat looks up
    for ex in (cx - 22, cx + 22):
        draw.ellipse((ex - 9, head_y - 9 + eye_dy, ex + 9, head_y + 9 + eye_dy), fill=(240, 200, 60))
    draw.text((24, 20), f"kf2v-mock sample: {name} frame", fill=(255, 255, 255),
              font=ImageFont.load_default())
    return image
