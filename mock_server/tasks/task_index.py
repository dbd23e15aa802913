"""What the service keeps in memory about every stored task, so that no request costs more with
100,000 tasks stored than with 100: each task's scheduling facts (``TaskState``, placed in its
queue by ``scheduler.TaskQueue``) and the indexes a task list is answered from (``TaskIndex``).

All of it is derived: it is rebuilt from the store when the service starts, and never stored.

The list (``GET /api/v1/tasks``) shows one account's tasks submitted in a window of at most 24
hours, newest first, filtered by model, key id and status, with the total. ``TaskIndex`` keeps, per
account, the submit times in submit order (a window is two bisections) and one sorted list of
sequence numbers per filter combination, status included: counting a window is two more
bisections, a page is a slice.
A status is a function of the clock, so each task's next status change is queued as an event, and
the lists are brought up to the clock's time (``catch_up``) before they are read. Tasks drop out of
the lists once 24 hours old (a list never shows them again), whether or not they have been swept
from the store yet.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import timedelta
from itertools import product

from sortedcontainers import SortedList

from .models import (CANCELED, FAILED, PENDING, RUNNING, SUCCEEDED, TASK_TTL, UNKNOWN, Task)
from .scheduler import from_us, seconds_to_us, to_us

TTL_US = TASK_TTL // timedelta(microseconds=1)


@dataclass(slots=True, eq=False)
class TaskState:
    """One stored task as the scheduler and the indexes see it; times in epoch microseconds."""
    task_id: str
    sequence: int
    region: str
    account_id: str
    api_key_id: str
    model: str
    submit: int
    ready: int  # submit + queue wait
    run: int  # how long it runs once started (0 for a failure at start)
    canceled: int | None
    failed: bool
    video_ready: bool
    start: int | None = None  # derived by its queue
    before: tuple[int, ...] = ()  # its queue's slots before it (scheduler.TaskQueue)
    status: str | None = None  # as filed in the index
    version: int = 0  # of its pending status event
    due: int | None = None  # when that event is

    @classmethod
    def of(cls, task: Task) -> "TaskState":
        return cls(task_id=task.task_id, sequence=task.sequence, region=task.region,
                   account_id=task.account_id, api_key_id=task.api_key_id, model=task.spec.model,
                   submit=to_us(task.submit_time),
                   ready=to_us(task.submit_time) + seconds_to_us(task.queue_wait),
                   run=0 if task.failure is not None and task.failure.at == "start"
                   else seconds_to_us(task.run_time),
                   canceled=to_us(task.canceled_time) if task.canceled_time is not None else None,
                   failed=task.failure is not None, video_ready=task.video_ready)

    @property
    def queue_key(self) -> tuple[str, str, str]:
        return self.region, self.account_id, self.model

    @property
    def end(self) -> int | None:
        """As ``Task.end_time``: the cancel, or the start plus the run time."""
        if self.canceled is not None:
            return self.canceled
        return None if self.start is None else self.start + self.run

    @property
    def scheduled_time(self):
        return from_us(self.start) if self.start is not None else None

    def status_at(self, now: int) -> str:
        """``Task.status_at``, on microseconds."""
        if now >= self.submit + TTL_US:
            return UNKNOWN
        if self.canceled is not None and now >= self.canceled:
            return CANCELED
        if self.start is None or now < self.start:
            return PENDING
        if now < self.start + self.run:
            return RUNNING
        if self.failed:
            return FAILED
        return SUCCEEDED if self.video_ready else RUNNING

    def next_change(self, now: int) -> int | None:
        """When its status changes next by the clock alone (a clip being written or a cancel
        changes it too, but those are told to the index)."""
        if self.canceled is not None or self.start is None:
            return None
        if now < self.start:
            return self.start
        if now < self.start + self.run:
            return self.start + self.run
        return None


def _filter_keys(state: TaskState, status: str) -> list[tuple[str | None, str | None, str | None]]:
    """The (model, key id, status) filter combinations ``state`` answers to; None: not filtered."""
    return list(product((None, state.model), (None, state.api_key_id), (None, status)))


class _AccountLists:
    def __init__(self) -> None:
        self.submits: list[int] = []  # in submit order, which is sequence order
        self.sequences: list[int] = []
        self.lists: dict[tuple, SortedList] = {}

    def file(self, state: TaskState, status: str, *, status_only: bool = False) -> None:
        for key in _filter_keys(state, status):
            if status_only and key[2] is None:
                continue
            found = self.lists.get(key)
            if found is None:
                found = self.lists[key] = SortedList()
            found.add(state.sequence)

    def unfile(self, state: TaskState, status: str, *, status_only: bool = False) -> None:
        for key in _filter_keys(state, status):
            found = self.lists.get(key)
            if found is not None and not (status_only and key[2] is None):
                found.discard(state.sequence)

    def drop_through(self, cutoff: int) -> list[int]:
        """Forget every task submitted at or before ``cutoff``; their sequence numbers."""
        count = bisect_right(self.submits, cutoff)
        if count == 0:
            return []
        gone = self.sequences[:count]
        del self.submits[:count]
        del self.sequences[:count]
        for key, found in list(self.lists.items()):
            del found[:found.bisect_right(gone[-1])]
            if not found:
                del self.lists[key]
        return gone


class TaskIndex:
    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], _AccountLists] = {}
        self._listed: dict[int, TaskState] = {}  # sequence -> state, while in the lists
        self._events: list[tuple[int, int, int, TaskState]] = []  # (when, sequence, version, state)

    def __len__(self) -> int:
        return len(self._listed)

    # --- changes ---------------------------------------------------------------------------------
    def add(self, state: TaskState, now: int) -> None:
        """A new task (the newest of its account: tasks are added in submit order)."""
        status = state.status_at(now)
        if status == UNKNOWN:
            return  # loaded from the store already expired: never listed again
        lists = self._accounts.get((state.region, state.account_id))
        if lists is None:
            lists = self._accounts[state.region, state.account_id] = _AccountLists()
        lists.submits.append(state.submit)
        lists.sequences.append(state.sequence)
        lists.file(state, status)
        state.status = status
        self._listed[state.sequence] = state
        self._schedule(state, now)

    def refresh(self, state: TaskState, now: int) -> None:
        """Its facts changed (its start, a cancel, its clip, a failure): file it again."""
        if self._listed.get(state.sequence) is not state:
            return
        self._file(state, now)
        self._schedule(state, now)

    def remove(self, state: TaskState) -> None:
        if self._listed.get(state.sequence) is state:
            self._accounts[state.region, state.account_id].unfile(state, state.status)
            del self._listed[state.sequence]  # (its submit time stays: it only bounds windows)
        state.version += 1  # its pending event, if any, is stale now

    # --- the clock --------------------------------------------------------------------------------
    def catch_up(self, now: int) -> None:
        """File every task whose status the clock has changed by ``now``; forget the expired."""
        for lists in self._accounts.values():
            if lists.submits and lists.submits[0] + TTL_US <= now:
                for sequence in lists.drop_through(now - TTL_US):
                    state = self._listed.pop(sequence, None)
                    if state is not None:
                        state.version += 1
        events = self._events
        while events and events[0][0] <= now:
            _, _, version, state = heapq.heappop(events)
            if version == state.version and self._listed.get(state.sequence) is state:
                self._file(state, now)
                self._schedule(state, now)

    def _file(self, state: TaskState, now: int) -> None:
        status = state.status_at(now)
        if status != state.status and status != UNKNOWN:  # the expired go by catch_up
            lists = self._accounts[state.region, state.account_id]
            lists.unfile(state, state.status, status_only=True)
            lists.file(state, status, status_only=True)
            state.status = status

    def _schedule(self, state: TaskState, now: int) -> None:
        state.version += 1
        state.due = state.next_change(now)
        if state.due is not None:
            heapq.heappush(self._events, (state.due, state.sequence, state.version, state))
            if len(self._events) > 2 * len(self._listed) + 1024:
                self._compact()

    def _compact(self) -> None:
        """Drop the events that went stale (a cancel moves every start behind it, and with the
        clock frozen none comes due): the heap stays within twice the tasks listed."""
        self._events = [(s.due, s.sequence, s.version, s) for s in self._listed.values()
                        if s.due is not None]
        heapq.heapify(self._events)

    # --- reading ----------------------------------------------------------------------------------
    def page(self, region: str, account_id: str, *, start: int, end: int, now: int,
             model: str | None = None, api_key_id: str | None = None, status: str | None = None,
             offset: int = 0, limit: int = 10) -> tuple[int, list[TaskState]]:
        """(how many match, the ``limit`` after ``offset`` of them, newest first) among the
        account's unexpired tasks submitted in ``[start, end]``. Call ``catch_up(now)`` first."""
        lists = self._accounts.get((region, account_id))
        if lists is None:
            return 0, []
        first = bisect_left(lists.submits, max(start, now - TTL_US + 1))
        last = bisect_right(lists.submits, end)
        found = lists.lists.get((model, api_key_id, status))
        if first >= last or found is None:
            return 0, []
        low = found.bisect_left(lists.sequences[first])
        high = found.bisect_right(lists.sequences[last - 1])
        top = high - offset
        chosen = found[max(low, top - limit):top] if top > low else []
        return high - low, [self._listed[s] for s in reversed(chosen)]
