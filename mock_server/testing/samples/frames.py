"""Seeded sample first/last frames and deliberately bad images, generated on demand with Pillow.

Two kinds of scene:
- ``scene(w, h, seed)``: a gradient with a few shapes and a "seed N" label; the emulator's own tests
  compare rendered clips against it (its output must stay stable).
- ``frame_pair(seed, size, fmt)``: a faker-driven pair — a palette, shapes and a caption word drawn
  from a seeded ``Faker``; the last frame is the same scene a moment later (shapes moved and recoloured,
  a second caption), as a keyframe pair for a transition would be.

Formats are the ones the service accepts (api-facts §2: JPEG, JPG, PNG, BMP, WEBP); sizes cover
several aspect ratios, among them the documented 750×1000 example.
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass
from functools import lru_cache
from itertools import cycle, islice
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image, ImageDraw, ImageFont

# name -> (Pillow format, file suffix, MIME type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "JPEG": ("JPEG", ".jpeg", "image/jpeg"),
    "JPG": ("JPEG", ".jpg", "image/jpeg"),
    "PNG": ("PNG", ".png", "image/png"),
    "BMP": ("BMP", ".bmp", "image/bmp"),
    "WEBP": ("WEBP", ".webp", "image/webp"),
}
MIME = {name: mime for name, (_, _, mime) in FORMATS.items()}
# Aspect ratios a client meets in practice; "750x1000" is the documented example (-> 816×1104 at 720P).
ASPECTS: dict[str, tuple[int, int]] = {
    "4:3": (640, 480), "3:4": (480, 640), "16:9": (832, 468), "9:16": (468, 832),
    "1:1": (512, 512), "750x1000": (750, 1000),
}


# --- the emulator's reference scene (kept stable) ------------------------------------------------
def scene(width: int, height: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom),
                            Image.new("RGB", (width, height), top), gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(width // 8, width // 2), y0 + rng.randrange(height // 8, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    draw.text((width // 20, height // 20), f"seed {seed}", fill=(255, 255, 255))
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[fmt][0] if fmt in FORMATS else fmt, **options)
    return buffer.getvalue()


def frame_bytes(width: int = 640, height: int = 480, seed: int = 1, fmt: str = "PNG") -> bytes:
    return encode(scene(width, height, seed), fmt)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def frame_data_url(width: int = 640, height: int = 480, seed: int = 1, fmt: str = "PNG") -> str:
    return data_url(frame_bytes(width, height, seed, fmt), MIME[fmt])


# --- faker-driven keyframe pairs -----------------------------------------------------------------
@dataclass(frozen=True)
class FramePair:
    first: bytes
    last: bytes
    width: int
    height: int
    fmt: str
    seed: int
    captions: tuple[str, str]

    @property
    def mime(self) -> str:
        return FORMATS[self.fmt][2]

    @property
    def suffix(self) -> str:
        return FORMATS[self.fmt][1]

    def data_urls(self) -> tuple[str, str]:
        """``data:<mime>;base64,...`` for both frames: what ``first_frame_url`` accepts inline."""
        return data_url(self.first, self.mime), data_url(self.last, self.mime)

    def write(self, directory: Path, stem: str = "frame") -> tuple[Path, Path]:
        """Write ``<stem>-first<suffix>`` and ``<stem>-last<suffix>``; the SDK uploads such paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = (directory / f"{stem}-first{self.suffix}", directory / f"{stem}-last{self.suffix}")
        paths[0].write_bytes(self.first)
        paths[1].write_bytes(self.last)
        return paths


@lru_cache(maxsize=1)
def _faker():
    from faker import Faker  # constructing one costs milliseconds: once per process
    return Faker("en_US")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def pair_scenes(width: int, height: int, seed: int) -> tuple[Image.Image, Image.Image, tuple[str, str]]:
    """Two images of one seeded scene, the second a moment after the first, and their captions."""
    fake = _faker()
    fake.seed_instance(seed)
    sky, ground = _rgb(fake.hex_color()), _rgb(fake.hex_color())
    shapes = []
    for _ in range(fake.random_int(3, 6)):
        w = fake.random_int(width // 10, width // 3)
        h = fake.random_int(height // 10, height // 3)
        x, y = fake.random_int(0, width - w), fake.random_int(0, height - h)
        dx, dy = fake.random_int(-width // 4, width // 4), fake.random_int(-height // 4, height // 4)
        shapes.append((fake.random_element(("ellipse", "rectangle", "triangle")), x, y, w, h, dx, dy,
                       _rgb(fake.hex_color()), _rgb(fake.hex_color())))
    captions = (fake.word().capitalize(), fake.word().capitalize())
    font = _font(max(12, min(width, height) // 10))
    images = []
    for step, caption in enumerate(captions):
        gradient = Image.linear_gradient("L").resize((width, height))
        image = Image.composite(Image.new("RGB", (width, height), ground),
                                Image.new("RGB", (width, height), sky), gradient)
        draw = ImageDraw.Draw(image)
        for kind, x, y, w, h, dx, dy, colour, later_colour in shapes:
            x, y = x + dx * step, y + dy * step
            fill = later_colour if step else colour
            if kind == "triangle":
                draw.polygon([(x + w // 2, y), (x + w, y + h), (x, y + h)], fill=fill)
            else:
                getattr(draw, kind)((x, y, x + w, y + h), fill=fill)
        draw.text((width // 20, height // 20), caption, fill=(255, 255, 255), font=font,
                  stroke_width=2, stroke_fill=(0, 0, 0))
        images.append(image)
    return images[0], images[1], captions


def _size(size: str | tuple[int, int]) -> tuple[int, int]:
    return ASPECTS[size] if isinstance(size, str) else (int(size[0]), int(size[1]))


def frame_pair(seed: int = 0, size: str | tuple[int, int] = "4:3", fmt: str = "PNG") -> FramePair:
    """A seeded first/last frame pair; ``size`` is an ``ASPECTS`` name or ``(width, height)``,
    ``fmt`` a ``FORMATS`` name. The same arguments always give the same bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}")
    width, height = _size(size)
    first, last, captions = pair_scenes(width, height, seed)
    options = {"quality": 90} if FORMATS[fmt][0] in ("JPEG", "WEBP") else {}
    return FramePair(encode(first, fmt, **options), encode(last, fmt, **options), width, height,
                     fmt, seed, captions)


def sample_pairs(count: int = len(FORMATS), seed: int = 0) -> Iterator[FramePair]:
    """``count`` pairs cycling through every format and every aspect ratio (seeds ``seed``, ``seed+1``…)."""
    combos = zip(cycle(FORMATS), cycle(ASPECTS))
    for index, (fmt, aspect) in enumerate(islice(combos, count)):
        yield frame_pair(seed + index, aspect, fmt)


# --- deliberately bad images ---------------------------------------------------------------------
def too_small() -> bytes:
    return frame_bytes(200, 150, seed=3)


def too_large_dimensions() -> bytes:
    return encode(Image.new("RGB", (8100, 300), (10, 20, 30)), "PNG")


def too_large_file() -> bytes:
    """An uncompressed BMP just over the 10 MB file-size limit (valid dimensions)."""
    return encode(Image.new("RGB", (1900, 1900), (40, 80, 120)), "BMP")


def corrupt_png() -> bytes:
    good = frame_bytes(400, 300, seed=4)
    return good[: len(good) // 2]  # a valid header, then the data stops


def with_alpha() -> bytes:
    return encode(Image.new("RGBA", (400, 300), (10, 20, 30, 128)), "PNG")


def gif() -> bytes:
    return encode(scene(400, 300, 5).convert("P"), "GIF")


def tiff() -> bytes:
    return encode(scene(400, 300, 7), "TIFF")


def not_an_image() -> bytes:
    return b"this is not an image at all" * 10


@dataclass(frozen=True)
class BadImage:
    """A bad image, the MIME type a careless client would label it with, and what the service
    answers: ``when`` is ``"submit"`` (a 400 on create) or ``"task"`` (the task ends FAILED), and
    ``error`` names the emulator's catalogue entry (``mock_server.errors.CATALOGUE``)."""
    name: str
    make: Callable[[], bytes]
    mime: str
    when: str
    error: str

    @property
    def data(self) -> bytes:
        return self.make()

    def data_url(self) -> str:
        return data_url(self.make(), self.mime)


BAD_IMAGES: dict[str, BadImage] = {bad.name: bad for bad in (
    BadImage("too_small", too_small, "image/png", "task", "image_too_small_or_large"),
    BadImage("too_large_dimensions", too_large_dimensions, "image/png", "task",
             "image_too_small_or_large"),
    BadImage("too_large_file", too_large_file, "image/bmp", "submit", "image_size_unsupported"),
    BadImage("wrong_format_gif", gif, "image/png", "submit", "media_format"),
    BadImage("wrong_format_tiff", tiff, "image/png", "submit", "media_format"),
    BadImage("corrupt_png", corrupt_png, "image/png", "submit", "image_decode_failed"),
    BadImage("with_alpha", with_alpha, "image/png", "submit", "media_format"),
    BadImage("not_an_image", not_an_image, "image/png", "submit", "media_format"),
)}


def bad_image(name: str) -> BadImage:
    try:
        return BAD_IMAGES[name]
    except KeyError:
        raise KeyError(f"no bad image {name!r}; choose from {', '.join(BAD_IMAGES)}") from None


# --- per-test factory (the plugin's ``kf2v_frames`` fixture) --------------------------------------
class FrameFactory:
    """Sample frames for one test; files go under ``directory`` (the test's tmp_path)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def pair(self, seed: int = 0, size: str | tuple[int, int] = "4:3", fmt: str = "PNG") -> FramePair:
        return frame_pair(seed, size, fmt)

    def files(self, seed: int = 0, size: str | tuple[int, int] = "4:3", fmt: str = "PNG",
              stem: str | None = None) -> tuple[Path, Path]:
        """Write a pair to disk and return the two paths."""
        return frame_pair(seed, size, fmt).write(self.directory, stem or f"frames-{seed}")

    def data_urls(self, seed: int = 0, size: str | tuple[int, int] = "4:3",
                  fmt: str = "PNG") -> tuple[str, str]:
        return frame_pair(seed, size, fmt).data_urls()

    def bad(self, name: str) -> BadImage:
        return bad_image(name)
