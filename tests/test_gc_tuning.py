"""``kf2v-mock serve`` keeps garbage-collection pauses short: what start-up built is frozen, and
the young generation is collected on a timer instead of piling up (a full journal evicts an entry
for each it records, so CPython's own allocation count hardly ever triggers a collection)."""

from __future__ import annotations

import asyncio
import gc

from mock_server import gc_tuning


async def test_start_freezes_and_the_young_generation_is_collected_on_the_timer(monkeypatch):
    collected: list[int] = []
    real_collect = gc.collect
    monkeypatch.setattr(gc_tuning.gc, "collect", lambda generation=2: collected.append(generation) or 0)
    monkeypatch.setattr(gc_tuning, "YOUNG_EVERY_S", 0)
    pauses = gc_tuning.ShortPauses(asyncio.get_running_loop())
    try:
        pauses.start()
        assert gc.get_freeze_count() > 0
        for _ in range(5):
            await asyncio.sleep(0)  # a zero delay fires on the loop's next turns
        assert collected and set(collected) == {0}
        pauses.stop()
        seen = len(collected)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(collected) == seen  # stopped: no more collections
    finally:
        pauses.stop()
        gc.unfreeze()
        real_collect()
