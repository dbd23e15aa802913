"""Per-account concurrency: which task runs when, given at most ``cap`` RUNNING at once.

Each account has one queue per model, first in, first out: tasks take a slot in submit order, each
the slot that frees first, and start once both the slot is free and their queue wait is over (so a
task whose wait is long may start after one submitted later). A task canceled before its start
never runs, but holds its turn until the moment it was canceled: a cancel only ever moves starts
that lie after it, never one a client could already have observed.

Start times are a pure function of stored facts (submit order, queue waits, run times, cancel
times, and the slots' state after the queue's oldest tasks were swept away), so they are never
stored: ``TaskQueue`` keeps them in memory, appending a new task in O(log cap) and replaying only
the tasks behind a canceled one. ``assign_start_times`` is the same rule over a whole list, the
reference the queue is tested against.

Times here are integer microseconds since the epoch, exactly what a ``datetime`` holds, so a start
derived here and the status a ``Task`` reports from it agree to the microsecond.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from typing import Iterable, Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_us(when: datetime) -> int:
    return (when - EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def seconds_to_us(seconds: float) -> int:
    """Rounded as ``timedelta(seconds=...)`` rounds: ``submit + timedelta(seconds=wait)`` agrees."""
    return timedelta(seconds=seconds) // _MICROSECOND


class Queued(Protocol):
    """What the queue needs of a task (``task_index.TaskState`` has it)."""
    ready: int  # submit + queue wait
    run: int  # how long it runs once started (0 for a failure at start)
    canceled: int | None
    start: int | None  # set by the queue
    before: tuple[int, ...]  # set by the queue: the slots' release times before this task


def place(task: Queued, slots: list[int], cap: int) -> None:
    """Give ``task`` its start from ``slots`` (a min-heap of release times, at most ``cap`` long,
    updated in place)."""
    free = slots[0] if len(slots) >= cap else None
    start = task.ready if free is None else max(task.ready, free)
    if task.canceled is not None and task.canceled <= start:
        task.start = None
        release = task.canceled if free is None else max(free, task.canceled)
    else:
        task.start = start
        release = start + task.run
    if free is None:
        heapq.heappush(slots, release)
    else:
        heapq.heapreplace(slots, release)


def normalized(base: Iterable[int], cap: int) -> list[int]:
    """A heap of at most ``cap`` release times (the latest ones, should ``cap`` have shrunk)."""
    slots = sorted(base)[-cap:] if cap > 0 else []
    heapq.heapify(slots)
    return slots


class TaskQueue:
    """One account's queue for one model, in submit order, with each task's start kept."""

    def __init__(self, cap: int, base: Iterable[int] = ()):
        self.cap = cap
        self.slots = normalized(base, cap)
        self.tasks: list[Queued] = []
        self._positions: dict[Queued, int] = {}  # task -> position counted from the first ever
        self._dropped = 0  # tasks swept from the head so far

    def __len__(self) -> int:
        return len(self.tasks)

    def append(self, task: Queued) -> None:
        task.before = tuple(self.slots)
        place(task, self.slots, self.cap)
        self._positions[task] = self._dropped + len(self.tasks)
        self.tasks.append(task)

    def cancel(self, task: Queued, at: int) -> list[Queued]:
        """Record ``task``'s cancel at ``at`` and replay the tasks behind it (the only ones whose
        start it can move); returns those whose start changed, ``task`` itself included."""
        position = self._positions[task] - self._dropped
        task.canceled = at
        slots = list(task.before)  # a heap's array, copied, is still a heap
        moved = []
        for queued in self.tasks[position:]:
            old = queued.start
            queued.before = tuple(slots)
            place(queued, slots, self.cap)
            if queued.start != old or queued is task:
                moved.append(queued)
        self.slots = slots
        return moved

    def head(self) -> Queued | None:
        return self.tasks[0] if self.tasks else None

    def drop_head(self, count: int) -> tuple[int, ...]:
        """Forget the ``count`` oldest tasks (swept); returns the slots' state after them, which
        the store keeps so that the rest are still placed as before after a restart."""
        for queued in self.tasks[:count]:
            del self._positions[queued]
        del self.tasks[:count]
        self._dropped += count
        return self.base()

    def base(self) -> tuple[int, ...]:
        """The slots' state before the oldest task still queued."""
        return self.tasks[0].before if self.tasks else tuple(self.slots)


def assign_start_times(tasks: Iterable, cap: int,
                       base: Iterable[int] = ()) -> dict[str, datetime | None]:
    """``{task_id: start}`` for one account's tasks of one model (``models.Task``, any order);
    None for tasks that never start. The reference for ``TaskQueue``."""
    ordered = sorted(tasks, key=lambda t: t.sequence)
    slots = normalized((to_us(b) for b in base), cap)
    starts: dict[str, datetime | None] = {}
    for task in ordered:
        entry = _Entry(task)
        place(entry, slots, cap)
        starts[task.task_id] = from_us(entry.start) if entry.start is not None else None
    return starts


class _Entry:
    __slots__ = ("ready", "run", "canceled", "start", "before")

    def __init__(self, task) -> None:
        self.ready = to_us(task.submit_time) + seconds_to_us(task.queue_wait)
        self.run = 0 if task.failure is not None and task.failure.at == "start" else \
            seconds_to_us(task.run_time)
        self.canceled = to_us(task.canceled_time) if task.canceled_time is not None else None
        self.start: int | None = None
        self.before: tuple[int, ...] = ()
