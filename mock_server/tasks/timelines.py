"""Timing profiles: how long a task waits in the queue and runs, drawn per task from a seeded RNG.

``fast`` (the default) is shaped around the SDK's poll schedule (api-facts/sdk-wire-contract §15:
1.x polls at ~0 s, 1 s, 2 s, 4 s...; v2 at 1 s, 3 s, 7 s...): the first poll right after submit sees
PENDING, the one at ~1 s sees RUNNING, and the task ends before ~3 s, so ``call()`` returns in a few
seconds. ``realistic`` reproduces the documented 1-5 minutes per task ("通常为1-5分钟", [SEED]),
the 2.2 flash model being faster ("较2.1模型速度提升50%").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Timeline:
    queue_wait: float  # seconds from submit until the task may start (if a slot is free)
    run_time: float  # seconds from start to end


def draw_timeline(profile: str, rng: random.Random, model: str) -> Timeline:
    if profile == "fast":
        return Timeline(queue_wait=rng.uniform(0.5, 0.9), run_time=rng.uniform(1.2, 1.9))
    if profile == "realistic":
        median = 100.0 if "flash" in model else 150.0
        total = min(300.0, max(60.0, rng.lognormvariate(math.log(median), 0.4)))
        queue_wait = total * rng.uniform(0.05, 0.2)
        return Timeline(queue_wait=queue_wait, run_time=total - queue_wait)
    raise ValueError(f"unknown timing profile {profile!r} (fast or realistic)")


PROFILES = ("fast", "realistic")
