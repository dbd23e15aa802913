"""Checks a downloaded clip the way a client's integration test would: decode it with the bundled
ffmpeg and compare its first and last frames with the input images."""

from __future__ import annotations

import io
import os
import struct
import tempfile

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageOps

from mock_server.media.sizing import output_size

MAE_SAME = 8.0  # perf-notes §3: yuv420p + CRF 25 round trip stays well under this
MAE_OTHER = 20.0


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def fitted(image_bytes: bytes, width: int, height: int) -> np.ndarray:
    """The input image scaled to cover ``width`` x ``height`` and centre-cropped (as rendered)."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(image_bytes))).convert("RGB")
    return np.asarray(ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC), dtype=np.int16)


def decode(data: bytes) -> tuple[dict, list[np.ndarray]]:
    fd, path = tempfile.mkstemp(suffix=".mp4")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(f, dtype=np.uint8).reshape(height, width, 3).astype(np.int16)
                  for f in reader]
        return meta, frames
    finally:
        os.unlink(path)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def assert_clip(data: bytes, *, first: bytes, last: bytes | None, resolution: str) -> dict:
    """A 5 s, 30 fps, 150-frame H.264 yuv420p MP4, moov first, sized by the tier rule, starting on
    ``first`` and ending on ``last``. Returns the decoder's metadata."""
    boxes = top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    meta, frames = decode(data)
    src = Image.open(io.BytesIO(first))
    expected_size = output_size(src.width, src.height, resolution)
    assert tuple(meta["size"]) == expected_size
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 30.0 and abs(meta["duration"] - 5.0) < 0.01
    assert len(frames) == 150
    w, h = expected_size
    first_img = fitted(first, w, h)
    assert mae(frames[0], first_img) < MAE_SAME
    if last is not None:
        last_img = fitted(last, w, h)
        assert mae(frames[-1], last_img) < MAE_SAME
        assert mae(frames[0], last_img) > MAE_OTHER
        assert mae(frames[-1], first_img) > MAE_OTHER
    return meta
