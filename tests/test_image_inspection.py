"""Whatever bytes arrive as an image, inspection answers with a catalogue error, never a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.frames import frame_bytes
from mock_server.api.image_intake import inspect_image
from mock_server.tasks.errors import DashScopeError

SEEDS = {fmt: frame_bytes(320, 240, seed=9, fmt=fmt) for fmt in ("PNG", "JPEG", "BMP", "WEBP")}


def inspect_or_refuse(data: bytes) -> None:
    try:
        image = inspect_image(data)
    except DashScopeError as error:
        assert 400 <= error.status < 500
        return
    assert image.width > 0 and image.height > 0 and image.format in SEEDS


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_images_are_accepted_or_refused_cleanly(fmt, data):
    original = bytearray(SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(original)))
    inspect_or_refuse(bytes(original[:cut]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_cleanly(blob):
    inspect_or_refuse(blob)
