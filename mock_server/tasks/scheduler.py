"""Per-account concurrency: which task runs when, given at most ``cap`` RUNNING at once.

A pure function of the tasks' submit order, queue waits, run times and cancellations: tasks start in
the order they become ready (submit + queue wait), each on the earliest free slot. A task canceled
before its start never takes a slot. Because a cancel is only allowed while PENDING, recomputing after
a create or a cancel never moves a start that a client could already have observed.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Iterable

from .models import Task


def assign_start_times(tasks: Iterable[Task], cap: int) -> dict[str, datetime | None]:
    """``{task_id: start}`` for one account's tasks of one model; None for tasks that never start."""
    ordered = sorted(tasks, key=lambda t: (t.submit_time + timedelta(seconds=t.queue_wait), t.sequence))
    free_at: list[datetime] = []  # min-heap of slot release times, at most ``cap`` long
    starts: dict[str, datetime | None] = {}
    for task in ordered:
        ready = task.submit_time + timedelta(seconds=task.queue_wait)
        if len(free_at) < cap:
            start = ready
        else:
            start = max(ready, free_at[0])
        if task.canceled_time is not None and task.canceled_time <= start:
            starts[task.task_id] = None
            continue
        run = 0.0 if (task.failure is not None and task.failure.at == "start") else task.run_time
        if len(free_at) < cap:
            heapq.heappush(free_at, start + timedelta(seconds=run))
        else:
            heapq.heapreplace(free_at, start + timedelta(seconds=run))
        starts[task.task_id] = start
    return starts
