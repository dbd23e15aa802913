"""The input frames of recent tasks, as the emulator received them (decoded from a data URL,
downloaded, or read from an ``oss://`` upload), so the console can show them side by side.

Only references to bytes the create already holds are kept (nothing is copied or decoded), in
memory, bounded by ``max_bytes`` (default 64 MiB): the oldest tasks' frames go first. Not kept
across restarts; a task whose frames are gone shows its URLs only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Frame:
    data: bytes
    mime: str


class InputFrames:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._frames: OrderedDict[str, dict[str, Frame]] = OrderedDict()
        self._bytes = 0

    def keep(self, task_id: str, first, last) -> None:
        """``first``/``last``: images with ``data`` and ``format`` (``FrameImage``), or None."""
        kept = {which: Frame(image.data, MIME.get(image.format, "application/octet-stream"))
                for which, image in (("first", first), ("last", last)) if image is not None}
        self._frames[task_id] = kept
        self._bytes += sum(len(f.data) for f in kept.values())
        while self._bytes > self.max_bytes and len(self._frames) > 1:
            _, gone = self._frames.popitem(last=False)
            self._bytes -= sum(len(f.data) for f in gone.values())

    def get(self, task_id: str, which: str) -> Frame | None:
        return self._frames.get(task_id, {}).get(which)

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0
