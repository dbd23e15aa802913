"""Output video size for a kf2v request.

The service keeps the first frame's aspect ratio and scales the total pixel
count to roughly the tier target; width and height must be multiples of 16,
so the ratio drifts slightly (api-facts.md section 10).
"""
from __future__ import annotations

import math

# Target pixel count per resolution tier.
# - 720P: the official kf2v doc says "约92万" pixels = 1280*720 = 921,600,
#   and gives the worked example 750x1000 -> 816x1104 (api-facts section 10).
# - 480P and 1080P: ASSUMPTION taken from the sibling i2v doc
#   ("480P: typically 640x480", "1080P: 1920x1080"); the kf2v docs publish no
#   number for these tiers.
TIER_PIXELS: dict[str, int] = {
    "480P": 640 * 480,
    "720P": 1280 * 720,
    "1080P": 1920 * 1080,
}


def _floor16(x: float) -> int:
    # The tiny epsilon keeps exact products (e.g. sqrt(1280*720*16/9) == 1280)
    # from falling one step short through floating-point error.
    return max(16, int(math.floor(x / 16.0 + 1e-9)) * 16)


def output_size(width: int, height: int, resolution: str) -> tuple[int, int]:
    """Return ``(W, H)`` of the generated video.

    ``W = floor16(sqrt(T*a))`` and ``H = floor16(sqrt(T/a))`` with ``a = width/height``
    of the first frame and ``T = TIER_PIXELS[resolution]``; neither is below 16.
    This rule reproduces the single documented example exactly:
    750x1000 at 720P -> (816, 1104).

    Raises ``KeyError`` for an unknown tier and ``ValueError`` for a non-positive size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    target = TIER_PIXELS[resolution]
    a = width / height
    return _floor16(math.sqrt(target * a)), _floor16(math.sqrt(target / a))
