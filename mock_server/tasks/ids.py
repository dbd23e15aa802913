"""Request ids. Without a seed they are random uuid4s, like the real service's (ids never repeat,
across resets and restarts alike). With an explicit seed (``--seed``) they are reproducible: the
n-th request after a start or a reset gets the same id on every run with the same history. Task ids
are drawn the same way, in ``TaskService.create``."""

from __future__ import annotations

import random
import uuid

# Unseeded ids: random version-4 UUIDs as text, like ``str(uuid.uuid4())`` at a seventh of its cost
# (one per request; they must be unique, not secret), from a generator seeded by the OS.
_unseeded = random.Random()
_UUID4_CLEAR = ~((0xF << 76) | (0xC << 60))
_UUID4_SET = (0x4 << 76) | (0x8 << 60)


def random_uuid4() -> str:
    h = f"{_unseeded.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RequestIds:
    def __init__(self, seed: int | None, run: int = 1):
        """``run`` counts the starts on one data dir, so that a restart never hands out the ids of
        the run before it (upload directories are named after the getPolicy request id)."""
        self.seed = seed
        self.run = run
        self._count = 0

    def next(self) -> str:
        if self.seed is None:
            return random_uuid4()
        self._count += 1
        rng = random.Random(f"{self.seed}:{self.run}:request:{self._count}")
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def restart(self) -> None:
        """After ``/_mock/reset``: the same sequence again (everything that used it is gone)."""
        self._count = 0
