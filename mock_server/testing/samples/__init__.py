"""Sample data for tests of code that calls kf2v: seeded first/last frame pairs in every accepted
format and several aspect ratios, deliberately bad images, and zh/en prompts. Everything is
generated on demand (nothing heavy ships with the package). The repository's ``fixtures/`` re-exports
these modules; the pytest plugin offers them as the ``kf2v_frames`` fixture."""

from .frames import (ASPECTS, BAD_IMAGES, FORMATS, BadImage, FrameFactory, FramePair, bad_image,
                     frame_pair, sample_pairs)
from .prompts import en_prompt, prompt, zh_prompt

__all__ = ["ASPECTS", "BAD_IMAGES", "FORMATS", "BadImage", "FrameFactory", "FramePair", "bad_image",
           "frame_pair", "sample_pairs", "en_prompt", "prompt", "zh_prompt"]
