"""Short garbage-collection pauses for ``kf2v-mock serve`` (a process-wide choice: only a process
of our own makes it; an emulator embedded in someone's tests leaves their collector alone).

- ``gc.freeze()`` once started: the 50,000 objects start-up built (modules, classes, routes) live
  as long as the process, and no full collection walks them again (28 ms -> 8 ms each, busy).
- A young-generation collection every ``YOUNG_EVERY_S``. CPython collects the young generation
  when allocations outnumber deallocations by 700, and a full journal evicts one entry for each it
  records: the count barely moves, 10,000 entries' objects piled up between collections, and each
  collection was a 10-17 ms stall. Collected every 100 ms they cost well under a millisecond.
"""
from __future__ import annotations

import asyncio
import gc

YOUNG_EVERY_S = 0.1


class ShortPauses:
    """``start()`` freezes what exists and then collects the young generation every
    ``YOUNG_EVERY_S`` on ``loop``; ``stop()`` ends that."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> "ShortPauses":
        gc.freeze()
        self._schedule()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _collect_young(self) -> None:
        gc.collect(0)
        self._schedule()

    def _schedule(self) -> None:
        self._timer = self._loop.call_later(YOUNG_EVERY_S, self._collect_young)
