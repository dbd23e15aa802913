"""A content-addressed cache of finished clips: identical frames, size, seed, prompt, template,
watermark and preset render once (``media.render.request_digest`` names them), and every later task
that asks for the same clip gets it without rendering.

Layout: ``<data dir>/clip-cache/<digest>.mp4``, nothing else: the file names are the index, so the
cache survives a restart with ``--data-dir`` and needs no table in the store. A task never serves
the cache's file itself: its own result key (``video_key``) gets a hard link to it (a copy where the
file system cannot link), so each task's link, expiry and deletion stay its own, and evicting an
entry never takes a clip away from a task.

Bounded: when the entries add up to more than ``max_bytes`` the least recently used go (a hit
refreshes an entry's modification time, which orders them again after a restart). Hard links share
their blocks with the tasks' files, so evicting frees disk only once those tasks expire too.

Every write is a temp name (``PARTIAL_CLIP``-shaped) renamed into place: a ``kill -9`` leaves a
complete entry or a temp file that ``load`` removes. Thread-safe: renders call it from worker
threads.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

ENTRY = re.compile(r"^[0-9a-f]{64}\.mp4$")
_TEMP = re.compile(r"^\..+\.part\.mp4$")  # the same shape as rendering.PARTIAL_CLIP
_STRIPES = 64


class ClipCache:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, int] = OrderedDict()  # digest -> size, oldest use first
        self._lock = threading.Lock()
        # One lock per digest stripe: a render waits for an identical one under way, not others.
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def load(self) -> None:
        """Read what a previous run left (blocks on the file system: run it off the loop)."""
        found = []
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            names = []
        for name in names:
            path = self.root / name
            if _TEMP.match(name):
                _unlink(path)
            elif ENTRY.match(name):
                stat = path.stat()
                found.append((stat.st_mtime, name[:-4], stat.st_size))
        with self._lock:
            self._entries.clear()
            for _, digest, size in sorted(found):
                self._entries[digest] = size
        self._evict()

    @property
    def size(self) -> int:
        with self._lock:
            return sum(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def path(self, digest: str) -> Path:
        return self.root / f"{digest}.mp4"

    def lock(self, digest: str) -> threading.Lock:
        """Held while a clip with this digest is looked up or rendered."""
        return self._stripes[int(digest[:8], 16) % _STRIPES]

    def place(self, digest: str, out: Path) -> bool:
        """Put the cached clip at ``out`` (atomically); False when it is not cached."""
        with self._lock:
            if digest not in self._entries:
                return False
            self._entries.move_to_end(digest)
        source = self.path(digest)
        try:
            _link_into_place(source, out)
            os.utime(source)
        except FileNotFoundError:  # removed behind our back: a miss
            with self._lock:
                self._entries.pop(digest, None)
            return False
        return True

    def store(self, digest: str, clip: Path) -> None:
        """Keep the finished ``clip`` as the entry for ``digest``, then evict down to the bound."""
        if self.max_bytes <= 0:
            return
        size = clip.stat().st_size
        if size > self.max_bytes:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        _link_into_place(clip, self.path(digest))
        with self._lock:
            self._entries[digest] = size
            self._entries.move_to_end(digest)
        self._evict()

    def _evict(self) -> None:
        gone = []
        with self._lock:
            total = sum(self._entries.values())
            while total > self.max_bytes and self._entries:
                digest, size = self._entries.popitem(last=False)
                total -= size
                gone.append(digest)
        for digest in gone:
            _unlink(self.path(digest))


def _link_into_place(source: Path, out: Path) -> None:
    """``out`` becomes the same file as ``source`` (a hard link, else a copy), all at once."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.part.mp4")
    try:
        try:
            os.link(source, tmp)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            shutil.copyfile(source, tmp)  # another file system, or links not allowed
            os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
