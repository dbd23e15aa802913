"""Request ids. Without a seed they are random uuid4s, like the real service's (ids never repeat,
across resets and restarts alike). With an explicit seed (``--seed``) they are reproducible: the
n-th request after a start or a reset gets the same id on every run with the same history. Task ids
are drawn the same way, in ``TaskService.create``."""

from __future__ import annotations

import random
import uuid


class RequestIds:
    def __init__(self, seed: int | None, run: int = 1):
        """``run`` counts the starts on one data dir, so that a restart never hands out the ids of
        the run before it (upload directories are named after the getPolicy request id)."""
        self.seed = seed
        self.run = run
        self._count = 0

    def next(self) -> str:
        if self.seed is None:
            return str(uuid.uuid4())
        self._count += 1
        rng = random.Random(f"{self.seed}:{self.run}:request:{self._count}")
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def restart(self) -> None:
        """After ``/_mock/reset``: the same sequence again (everything that used it is gone)."""
        self._count = 0
