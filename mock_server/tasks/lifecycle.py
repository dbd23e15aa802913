"""One log line per task transition (logger ``kf2v_mock.lifecycle``): created, RUNNING, render
start and finish, SUCCEEDED, FAILED with its code, CANCELED, expired (the task answers UNKNOWN),
link expired and file deleted, each with the task id and the request id that created it.

A task's status is derived from the clock on every read (``Task.status_at``), so nothing changes
state when time passes. ``LifecycleLog`` notices instead: each watched task has its next moment
(start, end, expiry, link expiry) in a heap, and ``tick(now)`` — called on every clock jump, by
the expiry sweeper while the clock runs, and before each request — logs what came due. A tick
costs the transitions due plus a heap peek, never a pass over the stored tasks. What happens
without the clock (created, canceled, clip written, render failed) is reported by the task
service through ``changed``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Callable, Iterable

from .clock import VirtualClock
from .models import CANCELED, FAILED, RUNNING, SUCCEEDED, TASK_TTL, Task

log = logging.getLogger("kf2v_mock.lifecycle")
FORGOTTEN_KEPT = 200  # tasks removed by expiry that the console still shows
# How far along a task's life the log has got; each step is logged once.
CREATED, STARTED, ENDED, EXPIRED, LINK_EXPIRED = range(5)
_TINY = timedelta(microseconds=1)


def log_event(event: str, task: Task, text: str, at: datetime | None = None, **fields) -> None:
    """One lifecycle line; the JSON log format carries every field as its own key."""
    if not log.isEnabledFor(logging.INFO):
        return
    when = f" at={at.isoformat()}" if at is not None else ""
    log.info("task %s %s%s request_id=%s", task.task_id, text, when, task.request_id,
             extra={"event": event, "task_id": task.task_id, "request_id": task.request_id,
                    **({"virtual_time": at.isoformat()} if at is not None else {}), **fields})


class LifecycleLog:
    def __init__(self, find: Callable[[str], Task | None], clock: VirtualClock):
        """``find(task_id)``: the stored task with its derived start (``TaskService.find``)."""
        self.find = find
        self.clock = clock
        self._heap: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self._progress: dict[str, int] = {}  # task id -> the last step logged
        self._clip_late: set[str] = set()  # past their end time, still waiting for their clip
        # Tasks the expiry sweep removed, newest last (the console lists them as expired).
        self.forgotten: deque[Task] = deque(maxlen=FORGOTTEN_KEPT)

    # --- what the service and the sweeper report ---------------------------------------------------
    def adopt(self, tasks: Iterable[Task]) -> None:
        """Watch tasks that exist already (a data dir picked up again) without logging their past."""
        now = self.clock.now()
        for task in tasks:
            self._progress[task.task_id] = max(step for step, _, _ in self._steps(task, now))
            self._watch(task, now)

    def changed(self, task: Task) -> None:
        """A task was created or changed by something other than time (cancel, clip written,
        render failed, start moved)."""
        now = self.clock.now()
        if task.task_id not in self._progress:
            self._progress[task.task_id] = CREATED
            spec = task.spec
            planned = (f" (will FAIL at its {task.failure.at} with {task.failure.code})"
                       if task.failure is not None else "")
            log_event("created", task, f"created PENDING: {spec.model} {spec.resolution} in "
                      f"{task.region}, key id {task.api_key_id}, queue {task.queue_wait:.1f} s, "
                      f"run {task.run_time:.1f} s{planned}", at=task.submit_time,
                      model=spec.model, region=task.region, api_key_id=task.api_key_id)
        self._advance(task, now)

    def tick(self, now: datetime | None = None) -> None:
        """Log every transition due by ``now``."""
        if not self._heap:
            return
        now = now or self.clock.now()
        while self._heap and self._heap[0][0] <= now:
            _, _, task_id = heapq.heappop(self._heap)
            task = self.find(task_id)
            if task is not None and task_id in self._progress:
                self._advance(task, now)

    def forget(self, task: Task) -> None:
        """The sweep removed ``task`` (24 h after its submit and its link's 24 h)."""
        if task.task_id in self._progress:
            self._advance(task, self.clock.now())
        if task.video_ready:
            log_event("file_deleted", task, "file deleted")
        self._progress.pop(task.task_id, None)
        self._clip_late.discard(task.task_id)
        self.forgotten.append(task)

    def reset(self) -> None:
        self._heap.clear()
        self._progress.clear()
        self._clip_late.clear()
        self.forgotten.clear()

    # --- internals ---------------------------------------------------------------------------------
    def _steps(self, task: Task, now: datetime) -> list[tuple[int, str, datetime]]:
        """The steps of ``task``'s life reached by ``now``: (step, status, when)."""
        steps = [(CREATED, "PENDING", task.submit_time)]
        if task.scheduled_time is not None and task.scheduled_time <= now \
                and task.scheduled_time < task.expires_at:
            steps.append((STARTED, RUNNING, task.scheduled_time))
        final = task.status_at(min(now, task.expires_at - _TINY))
        if final in (SUCCEEDED, FAILED, CANCELED):
            end = task.end_time or task.canceled_time or now
            steps.append((ENDED, final, end))
        if now >= task.expires_at:
            steps.append((EXPIRED, "UNKNOWN", task.expires_at))
            if task.video_ready and task.end_time is not None and now >= task.end_time + TASK_TTL:
                steps.append((LINK_EXPIRED, "UNKNOWN", task.end_time + TASK_TTL))
        return steps

    def _advance(self, task: Task, now: datetime) -> None:
        done = self._progress.get(task.task_id, CREATED)
        for step, status, when in self._steps(task, now):
            if step <= done:
                continue
            self._progress[task.task_id] = step
            if step == STARTED:
                log_event("running", task, "RUNNING", at=when)
            elif step == ENDED and status == SUCCEEDED:
                late = task.task_id in self._clip_late
                self._clip_late.discard(task.task_id)
                log_event("succeeded", task, "SUCCEEDED" + (" (its clip was written after its "
                          "end time)" if late else ""), at=now if late else when)
            elif step == ENDED and status == FAILED:
                failure = task.failure
                log_event("failed", task, f"FAILED {failure.code if failure else ''}: "
                          f"{failure.message if failure else ''}", at=when,
                          code=failure.code if failure else None)
            elif step == ENDED:
                log_event("canceled", task, "CANCELED", at=when)
            elif step == EXPIRED:
                log_event("expired", task, "expired: 24 h after submit it answers UNKNOWN",
                          at=when)
            else:
                log_event("link_expired", task, "result link expired (24 h after its end)",
                          at=when)
        end = task.end_time
        if (end is not None and now >= end and task.failure is None and not task.video_ready
                and task.canceled_time is None):
            self._clip_late.add(task.task_id)
        self._watch(task, now)

    def _watch(self, task: Task, now: datetime) -> None:
        """Put the task's next moment in the heap (none while it waits for its clip)."""
        moments = [task.scheduled_time, task.end_time, task.expires_at]
        if task.end_time is not None:
            moments.append(task.end_time + TASK_TTL)
        upcoming = [m for m in moments if m is not None and m > now]
        if upcoming:
            heapq.heappush(self._heap, (min(upcoming), next(self._order), task.task_id))
