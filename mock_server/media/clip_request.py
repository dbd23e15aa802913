"""What a clip render is asked for, and the name of the clip it gives.

Everything the server side needs to ask for a clip (``RenderRequest``, ``request_digest`` for the
clip cache, the presets and limits for its flags) without importing the renderer itself: frame
synthesis needs numpy, which only render workers load (``render.py``, ``worker.py``).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import imageio_ffmpeg

FPS = 30
NUM_FRAMES = 150
DURATION_S = NUM_FRAMES / FPS
CRF = 25
DEFAULT_PRESET = "veryfast"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast",
                "medium", "slow", "slower", "veryslow", "placebo")
SEED_MAX = 2147483647

# Effect templates the real API names (their looks: templates.py).
TEMPLATES = ("hanfu-1", "solaron", "magazine", "mech1", "mech2")


class RenderError(RuntimeError):
    """ffmpeg failed; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class RenderRequest:
    first_image: bytes          # encoded image file bytes (JPEG/PNG/BMP/WEBP), validated by caller
    last_image: bytes | None    # None when an effect template is used
    width: int                  # output size, multiples of 16 (from sizing.output_size)
    height: int
    seed: int                   # 0..2147483647
    prompt: str = ""            # may steer the camera move
    template: str | None = None  # hanfu-1, solaron, magazine, mech1, mech2
    watermark: bool = False
    preset: str = DEFAULT_PRESET  # x264 preset; tests use "ultrafast"


# Bump whenever the same request would give other bytes (the clip cache keys on it).
RENDER_FORMAT = 3


def request_digest(req: RenderRequest) -> str:
    """A hex SHA-256 naming the clip ``req`` renders to: equal digests, equal bytes (same
    renderer format and ffmpeg build)."""
    digest = hashlib.sha256()
    for part in (f"kf2v-clip/{RENDER_FORMAT}", os.path.basename(imageio_ffmpeg.get_ffmpeg_exe()),
                 req.width, req.height, req.seed, req.prompt, req.template, req.watermark,
                 req.preset, req.first_image, req.last_image):
        data = b"b" + part if isinstance(part, bytes) else b"r" + repr(part).encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def validate(req: RenderRequest) -> None:
    """Raise ``TypeError``/``ValueError`` for a request ``render_clip`` cannot render."""
    if not isinstance(req.width, int) or not isinstance(req.height, int):
        raise TypeError("width and height must be int")
    if req.width < 16 or req.height < 16 or req.width % 2 or req.height % 2:
        raise ValueError(f"output size must be even and >= 16, got {req.width}x{req.height}")
    if not isinstance(req.seed, int) or not 0 <= req.seed <= SEED_MAX:
        raise ValueError(f"seed must be an int in [0, {SEED_MAX}], got {req.seed!r}")
    if req.template is not None and req.template not in TEMPLATES:
        raise ValueError(f"unknown template {req.template!r}; known: {', '.join(TEMPLATES)}")
    if req.template is None and req.last_image is None:
        raise ValueError("last_image is required unless a template is used")
    if req.preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {req.preset!r}")
