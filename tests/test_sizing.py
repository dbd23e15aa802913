import math
import pathlib
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mock_server.media.sizing import TIER_PIXELS, output_size  # noqa: E402


def test_tiers():
    assert TIER_PIXELS == {"480P": 640 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}


def test_documented_example():
    # api-facts section 10: 750x1000 at 720P -> 816x1104
    assert output_size(750, 1000, "720P") == (816, 1104)


@pytest.mark.parametrize(
    "w,h,res,expected",
    [
        (1280, 720, "720P", (1280, 720)),
        (720, 1280, "720P", (720, 1280)),
        (640, 480, "480P", (640, 480)),
        (1920, 1080, "1080P", (1920, 1072)),  # 1080 is not a multiple of 16
        (1000, 1000, "720P", (960, 960)),
    ],
)
def test_known_sizes(w, h, res, expected):
    assert output_size(w, h, res) == expected


def test_unknown_tier_and_bad_size():
    with pytest.raises(KeyError):
        output_size(100, 100, "4K")
    with pytest.raises(ValueError):
        output_size(0, 100, "720P")


def _check(w, h, res):
    t = TIER_PIXELS[res]
    a = w / h
    W, H = output_size(w, h, res)
    assert W % 16 == 0 and H % 16 == 0
    assert W >= 16 and H >= 16
    assert W * H <= t
    # each side is the unfloored ideal minus less than 16 px
    ideal_w, ideal_h = math.sqrt(t * a), math.sqrt(t / a)
    assert ideal_w - 16 < W <= ideal_w + 1e-6
    assert ideal_h - 16 < H <= ideal_h + 1e-6
    # close to the target: at most the two floor losses
    assert W * H >= t * (1 - 16 / ideal_w) * (1 - 16 / ideal_h) - 1e-6
    if 0.25 <= a <= 4:
        assert W * H >= 0.9 * t
    # aspect drift bounded by the floor steps
    drift = abs(W / H - a) / a
    assert drift <= 16 / W + 16 / H + 1e-9
    if 0.5 <= a <= 2:
        assert drift < 0.05


@pytest.mark.parametrize("res", sorted(TIER_PIXELS))
def test_common_aspects(res):
    for w, h in [(1920, 1080), (1080, 1920), (1000, 750), (750, 1000), (1024, 1024),
                 (2000, 360), (360, 2000), (240, 8000), (8000, 240)]:
        _check(w, h, res)


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(min_value=240, max_value=8000),
    h=st.integers(min_value=240, max_value=8000),
    res=st.sampled_from(sorted(TIER_PIXELS)),
)
def test_property(w, h, res):
    _check(w, h, res)


@settings(max_examples=100, deadline=None)
@given(w=st.integers(min_value=240, max_value=8000), h=st.integers(min_value=240, max_value=8000))
def test_tiers_are_ordered(w, h):
    s = {r: output_size(w, h, r) for r in TIER_PIXELS}
    px = {r: s[r][0] * s[r][1] for r in s}
    assert px["480P"] < px["720P"] < px["1080P"]
