"""The task lifecycle: create, look up, list, cancel and expire tasks for an account.

State lives in the ``Store``; time comes from the ``VirtualClock``; a task's status is derived from
both on every read (``Task.status_at``), so nothing needs to tick. The synthesizer renders each
accepted task's clip and reports back through ``mark_video_ready`` / ``mark_render_failed``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .clock import VirtualClock
from .errors import DashScopeError, quoted
from .models import PENDING, SEED_MAX, TASK_TTL, Account, Failure, Task, TaskSpec
from .prompt_extension import extend_prompt
from .regions import REGIONS
from .scheduler import assign_start_times
from .store_interface import Store
from .timelines import Timeline, draw_timeline


@dataclass(frozen=True)
class ListQuery:
    start: datetime
    end: datetime
    task_id: str | None = None
    model_name: str | None = None
    api_key_id: str | None = None
    region: str | None = None  # the SDK may send it; a key only ever sees its own region's tasks
    status: str | None = None
    page_no: int = 1
    page_size: int = 10


class TaskService:
    def __init__(self, store: Store, clock: VirtualClock, *, seed: int | str | None = None,
                 timing: str = "fast", max_running: int | None = None):
        self.store = store
        self.clock = clock
        # None: random ids and draws, like the real service; else what they are derived from (the
        # --seed, or a chaos run's seed while one is on: see create).
        self.seed = seed
        self.timing = timing
        # None: each model's documented cap (regions.ModelSpec.max_running).
        self.max_running = max_running
        self.on_expired: Callable[[Task], None] | None = None
        # Told of every change that is not the clock's doing (the lifecycle log listens).
        self.on_changed: Callable[[Task], None] = lambda task: None

    # --- create ----------------------------------------------------------------------------------
    def create(self, account: Account, spec: TaskSpec, request_id: str, *, width: int = 0,
               height: int = 0, failure: Failure | None = None,
               timing: dict | None = None) -> Task:
        """``timing`` (``{"queue_wait"?, "run_time"?}`` seconds, from a fault rule or the chaos
        schedule) replaces the drawn durations; the draws still happen, so ids stay the same."""
        sequence = self.store.next_sequence()
        if self.seed is None:
            # Real task ids are random uuid4s (real-recordings.md, difference 2): never the same
            # twice, across resets and restarts alike; so are the timeline and the drawn seed.
            rng = random.Random()
            task_id = str(uuid.uuid4())
        else:
            # An explicit seed: the n-th task after a reset or a fresh start is the same every run.
            rng = random.Random(f"{self.seed}:task:{sequence}")
            task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        timeline = draw_timeline(self.timing, rng, spec.model)
        if timing:
            timeline = Timeline(queue_wait=timing.get("queue_wait", timeline.queue_wait),
                                run_time=timing.get("run_time", timeline.run_time))
        seed = spec.seed if spec.seed is not None else rng.randint(0, SEED_MAX)
        actual_prompt = None
        if spec.prompt_extend and spec.prompt:
            actual_prompt = extend_prompt(spec.prompt, seed)
        task = Task(
            task_id=task_id, request_id=request_id, region=account.region,
            account_id=account.account_id, api_key_id=account.api_key_id, spec=spec, seed=seed,
            submit_time=self.clock.now(), queue_wait=timeline.queue_wait,
            run_time=timeline.run_time, sequence=sequence, actual_prompt=actual_prompt,
            width=width, height=height, failure=failure,
            video_key=_result_key(rng, self.clock.now(), task_id),
        )
        self.store.add_task(task)
        self._reschedule(task)
        self.on_changed(task)
        return task

    # --- read ------------------------------------------------------------------------------------
    def get(self, account: Account, task_id: str) -> Task | None:
        """The account's task, or None when it does not exist for this account (-> UNKNOWN)."""
        task = self.store.get_task(task_id)
        if task is None or task.region != account.region or task.account_id != account.account_id:
            return None
        if self.clock.now() >= task.expires_at:
            return None
        return task

    def list(self, account: Account, query: ListQuery) -> tuple[int, list[Task]]:
        now = self.clock.now()
        matches = []
        for task in self.store.tasks_of(account.region, account.account_id):
            if now >= task.expires_at:
                continue
            if not query.start <= task.submit_time <= query.end:
                continue
            if query.task_id and task.task_id != query.task_id:
                continue
            if query.model_name and task.spec.model != query.model_name:
                continue
            if query.api_key_id and task.api_key_id != query.api_key_id:
                continue
            if query.region and task.region != query.region:
                continue
            if query.status and task.status_at(now) != query.status:
                continue
            matches.append(task)
        matches.sort(key=lambda t: t.sequence, reverse=True)  # newest first (ASSUMPTION)
        first = (query.page_no - 1) * query.page_size
        return len(matches), matches[first:first + query.page_size]

    # --- cancel ----------------------------------------------------------------------------------
    def cancel(self, account: Account, task_id: str) -> Task:
        task = self.get(account, task_id)
        if task is None:
            # The same words whether it never existed or is another account's (isolation).
            raise DashScopeError.of("unsupported_cancel", reason=(
                f"task {quoted(task_id)} is unknown to this account: never created here, "
                "another account's, or over 24 h old"))
        status = task.status_at(self.clock.now())
        if status != PENDING:
            raise DashScopeError.of("unsupported_cancel", reason=(
                f"task {task_id} is {status}; only a PENDING task can be canceled"))
        task.canceled_time = self.clock.now()
        self.store.save_task(task)
        self._reschedule(task)
        self.on_changed(task)
        return task

    # --- media callbacks -------------------------------------------------------------------------
    def mark_video_ready(self, task_id: str) -> None:
        task = self.store.get_task(task_id)
        if task is not None:
            task.video_ready = True
            self.store.save_task(task)
            self.on_changed(task)

    def mark_render_failed(self, task_id: str) -> None:
        task = self.store.get_task(task_id)
        if task is not None and task.failure is None:
            spec = DashScopeError.of("internal_algo")
            task.failure = Failure(spec.code, spec.message, at="end")
            self.store.save_task(task)
            self.on_changed(task)

    # --- expiry ----------------------------------------------------------------------------------
    def sweep_expired(self, now: datetime | None = None) -> list[Task]:
        """Forget tasks past their 24 hours and their result links' 24 hours; returns them."""
        now = now or self.clock.now()
        gone = []
        for task in self.store.tasks():
            end = task.end_time or task.submit_time
            if now >= task.expires_at and now >= end + TASK_TTL:
                self.store.delete_task(task.task_id)
                gone.append(task)
                if self.on_expired is not None:
                    self.on_expired(task)
        return gone

    # --- internals -------------------------------------------------------------------------------
    def cap_for(self, task: Task) -> int:
        if self.max_running is not None:
            return self.max_running
        return REGIONS[task.region].models[task.spec.model].max_running

    def reschedule_all(self) -> None:
        """Recompute every start time (after a restart: a create or cancel may have been cut off
        between its writes). Start times are a pure function of stored facts, so this changes
        nothing that was consistent."""
        seen = set()
        for task in self.store.tasks():
            group = (task.region, task.account_id, task.spec.model)
            if group not in seen:
                seen.add(group)
                self._reschedule(task)

    def _reschedule(self, changed: Task) -> None:
        group = [t for t in self.store.tasks_of(changed.region, changed.account_id)
                 if t.spec.model == changed.spec.model]
        starts = assign_start_times(group, self.cap_for(changed))
        for task in group:
            start = starts.get(task.task_id)
            if start != task.scheduled_time:
                task.scheduled_time = start
                self.store.save_task(task)
                if task.task_id != changed.task_id:
                    self.on_changed(task)


def _result_key(rng: random.Random, now: datetime, task_id: str) -> str:
    """The real result path shape: ``1d/<2 hex>/<YYYYMMDD>/<8 hex>/<uuid>.mp4`` (api-facts §8)."""
    return f"1d/{rng.getrandbits(8):02x}/{now:%Y%m%d}/{rng.getrandbits(32):08x}/{task_id}.mp4"


def default_list_window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(hours=24), now
