"""Decompression bombs and absurd dimensions are refused from the header, before any pixel is
decoded, whatever Pillow's own MAX_IMAGE_PIXELS says, and never as a 500. The bombs are tiny files
built here (a real small image whose header is rewritten to claim a huge size); none is committed."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from fixtures.frames import data_url, frame_bytes
from mock_server.api.image_intake import inspect_image
from mock_server.tasks.errors import DashScopeError
from tests.test_intake import body_with, refused


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR says ``width`` x ``height`` (valid CRC), followed by a few bytes of a
    deflate stream of zeros: decoding it would inflate to width*height*3 bytes."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1024 * 1024), 9)  # ~1 KB that inflates to 1 MB (and beyond: truncated)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with its SOF0 rewritten to ``width`` x ``height``."""
    data = bytearray(frame_bytes(64, 64, seed=5, fmt="JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(frame_bytes(64, 64, seed=6, fmt="BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) with its 14-bit size fields set to ``width`` x ``height``."""
    image = Image.frombytes("RGB", (64, 64), bytes(64 * 64 * 3))
    import io
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    offset = data.index(b"VP8L") + 8 + 1  # after the chunk header and the 0x2f signature
    bits = struct.unpack_from("<I", data, offset)[0]
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, offset, bits)
    return bytes(data)


BOMBS = {
    "png-30000x30000": (lambda: png_claiming(30000, 30000), "image/png"),  # > Pillow's error limit
    "png-10000x10000": (lambda: png_claiming(10000, 10000), "image/png"),  # Pillow's warning zone
    "png-8001x8001": (lambda: png_claiming(8001, 8001), "image/png"),      # just over our cap
    "png-1x2000000000": (lambda: png_claiming(1, 2_000_000_000), "image/png"),
    "jpeg-60000x60000": (lambda: jpeg_claiming(60000, 60000), "image/jpeg"),
    "bmp-30000x30000": (lambda: bmp_claiming(30000, 30000), "image/bmp"),
    "webp-16384x16384": (lambda: webp_claiming(16384, 16384), "image/webp"),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Any attempt to decode pixels fails the test (the check must come from the header); the
    attempts are also recorded, in case the code under test swallows the exception."""
    attempts: list[str] = []

    def refuse(self, *args, **kwargs):
        attempts.append(f"{self.format} {self.size}")
        raise AssertionError(f"{self.format} image of {self.size} was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    yield attempts
    assert attempts == []


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_headers_are_refused_without_decoding(no_decoding, name):
    make, _ = BOMBS[name]
    with pytest.raises(DashScopeError) as refused_:
        inspect_image(make())
    assert refused_.value.code == "InvalidParameter"
    assert refused_.value.message == "The image size is not supported for the data inspection."


@pytest.mark.parametrize("limit", [None, 10 ** 12])
def test_our_cap_holds_even_when_pillows_limit_is_lifted(no_decoding, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    for name in ("png-10000x10000", "jpeg-60000x60000"):
        with pytest.raises(DashScopeError) as refused_:
            inspect_image(BOMBS[name][0]())
        assert refused_.value.status == 400


@pytest.mark.parametrize("name", list(BOMBS))
async def test_bombs_through_the_api_are_a_400_and_create_nothing(client, name):
    make, mime = BOMBS[name]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await refused(client, body_with(data_url(make(), mime)), "image_size_unsupported")
    assert loop.time() - started < 5  # refused from the header, not after inflating gigabytes


def test_formats_outside_the_accepted_ones_are_not_even_parsed(monkeypatch):
    # A TIFF never reaches Pillow's TIFF parser: refused as a format, like GIF.
    import io
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buffer, "TIFF")
    from PIL import TiffImagePlugin

    def explode(self):
        raise AssertionError("TIFF parser ran")
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_open", explode)
    with pytest.raises(DashScopeError) as refused_:
        inspect_image(buffer.getvalue())
    assert refused_.value.message == ("The media format is not supported or incorrect for the "
                                      "data inspection.")
