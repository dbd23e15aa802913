"""The task lifecycle: create, look up, list, cancel and expire tasks for an account.

Facts live in the ``Store``; time comes from the ``VirtualClock``; a task's start and status are
derived from both (``Task.status_at``), so nothing needs to tick. The synthesizer renders each
accepted task's clip and reports back through ``mark_video_ready`` / ``mark_render_failed``. No
operation reads more than it answers with: costs do not grow with the number of tasks stored.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

from .clock import VirtualClock
from .errors import DashScopeError, quoted
from .models import PENDING, SEED_MAX, Account, Failure, Task, TaskSpec
from .prompt_extension import extend_prompt
from .regions import REGIONS
from .scheduler import TaskQueue, to_us
from .store_interface import QueueKey, Store
from .task_index import TTL_US, TaskIndex, TaskState
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
    """Creates, reads, lists, cancels and expires tasks. What a task's facts imply - its start
    (scheduler.TaskQueue, one per account and model), its status over time and the list's indexes
    (task_index.TaskIndex) - is kept in memory, derived from the store when the service starts;
    every change goes to the store first, so a write that fails changes nothing."""

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
        self.reload()

    def reload(self) -> None:
        """Derive every queue and index from the store again (at start, and after a reset)."""
        self._states: dict[str, TaskState] = {}
        self._queues: dict[QueueKey, TaskQueue] = {}
        self._index = TaskIndex()
        self._bases = self.store.queue_bases()
        now = to_us(self.clock.now())
        # The newest moment a stored task records (its submit or cancel): the clock must not
        # resume before it.
        self.latest_event: datetime | None = None
        for task in self.store.iter_tasks():  # in submit order
            self._admit(TaskState.of(task), now)
            event = task.canceled_time or task.submit_time
            if self.latest_event is None or event > self.latest_event:
                self.latest_event = event

    def _admit(self, state: TaskState, now: int) -> None:
        queue = self._queues.get(state.queue_key)
        if queue is None:
            region, _, model = state.queue_key
            queue = self._queues[state.queue_key] = TaskQueue(
                self.cap_for(region, model), self._bases.get(state.queue_key, ()))
        queue.append(state)
        self._states[state.task_id] = state
        self._index.add(state, now)

    # --- create ----------------------------------------------------------------------------------
    def create(self, account: Account, spec: TaskSpec, request_id: str, *, width: int = 0,
               height: int = 0, failure: Failure | None = None, timing: dict | None = None,
               inputs: str | None = None) -> Task:
        """Store a new task (``inputs``: where its frames are kept, already written) and queue
        it. If the store refuses it, nothing is left of it. ``timing`` (``{"queue_wait"?,
        "run_time"?}`` seconds, from a fault rule or the chaos schedule) replaces the drawn
        durations; the draws still happen, so ids stay the same."""
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
        now = self.clock.now()
        task = Task(
            task_id=task_id, request_id=request_id, region=account.region,
            account_id=account.account_id, api_key_id=account.api_key_id,
            spec=spec.for_storage(), seed=seed, submit_time=now, queue_wait=timeline.queue_wait,
            run_time=timeline.run_time, sequence=sequence, actual_prompt=actual_prompt,
            width=width, height=height, failure=failure,
            video_key=_result_key(rng, now, task_id), inputs=inputs,
        )
        self.store.add_task(task)
        state = TaskState.of(task)
        self._admit(state, to_us(now))
        created = self._derived(task, state)
        self.on_changed(created)
        return created

    # --- read ------------------------------------------------------------------------------------
    def get(self, account: Account, task_id: str, now: datetime | None = None) -> Task | None:
        """The account's task, or None when it does not exist for this account (-> UNKNOWN) or
        is over 24 h old at ``now`` (default: the clock's now)."""
        state = self._states.get(task_id)
        if (state is None or state.region != account.region
                or state.account_id != account.account_id):
            return None
        if to_us(now or self.clock.now()) >= state.submit + TTL_US:
            return None
        return self.find(task_id)

    def find(self, task_id: str) -> Task | None:
        """Any stored task, with its derived start (admin views, test harnesses)."""
        task = self.store.get_task(task_id)
        return self._derived(task, self._states.get(task_id)) if task is not None else None

    def list(self, account: Account, query: ListQuery) -> tuple[int, list[Task]]:
        if query.region and query.region != account.region:
            return 0, []
        now = to_us(self.clock.now())
        offset = (query.page_no - 1) * query.page_size
        if query.task_id:
            state = self._states.get(query.task_id)
            found = [state] if state and self._matches(state, account, query, now) else []
            total, states = len(found), found[offset:offset + query.page_size]
        else:
            self._index.catch_up(now)
            total, states = self._index.page(
                account.region, account.account_id, start=to_us(query.start), end=to_us(query.end),
                now=now, model=query.model_name, api_key_id=query.api_key_id, status=query.status,
                offset=offset, limit=query.page_size)
        tasks = self.store.get_tasks([s.task_id for s in states])
        return total, [self._derived(t, self._states.get(t.task_id)) for t in tasks]

    @staticmethod
    def _matches(state: TaskState, account: Account, query: ListQuery, now: int) -> bool:
        return (state.region == account.region and state.account_id == account.account_id
                and now < state.submit + TTL_US
                and to_us(query.start) <= state.submit <= to_us(query.end)
                and query.model_name in (None, state.model)
                and query.api_key_id in (None, state.api_key_id)
                and query.status in (None, state.status_at(now)))

    def iter_tasks(self):
        """Every stored task with its derived start, oldest first (reads everything)."""
        for task in self.store.iter_tasks():
            yield self._derived(task, self._states.get(task.task_id))

    def dump(self, *, before: int | None, limit: int,
             **filters: str) -> tuple[list[Task], int | None]:
        """The newest ``limit`` stored tasks with a sequence number below ``before`` (None: all)
        that match ``filters`` (status, region, model, api_key_id, account_id), oldest first, and
        the cursor for the page before them (None when there is none). Unfiltered, it reads only
        the page from the store; a filter scans the tasks in memory, newest first."""
        if not filters:
            page = self.store.tasks_before(before, limit + 1)
            more, page = len(page) > limit, page[:limit]
        else:
            now = to_us(self.clock.now())
            chosen: list[str] = []
            for state in reversed(self._states.values()):
                if before is not None and state.sequence >= before:
                    continue
                if all(_field(state, name, now) == value for name, value in filters.items()):
                    chosen.append(state.task_id)
                    if len(chosen) > limit:
                        break
            more, page = len(chosen) > limit, self.store.get_tasks(chosen[:limit])
        tasks = [self._derived(t, self._states.get(t.task_id)) for t in reversed(page)]
        return tasks, (tasks[0].sequence if more and tasks else None)

    def count(self) -> int:
        return len(self._states)

    def unfinished(self) -> list[Task]:
        """The tasks that may still report SUCCEEDED once their clip is written (none failed,
        canceled, expired or rendered): what a restart renders again."""
        now = to_us(self.clock.now())
        ids = [s.task_id for s in self._states.values()
               if not (s.failed or s.video_ready or s.canceled is not None)
               and now < s.submit + TTL_US]
        return self.store.get_tasks(ids)

    # --- cancel ----------------------------------------------------------------------------------
    def cancel(self, account: Account, task_id: str) -> Task:
        task = self.get(account, task_id)
        now = self.clock.now()
        if task is None:
            # The same words whether it never existed or is another account's (isolation).
            raise DashScopeError.of("unsupported_cancel", reason=(
                f"task {quoted(task_id)} is unknown to this account: never created here, "
                "another account's, or over 24 h old"))
        status = task.status_at(now)
        if status != PENDING:
            raise DashScopeError.of("unsupported_cancel", reason=(
                f"task {task_id} is {status}; only a PENDING task can be canceled"))
        canceled = replace(task, canceled_time=now, scheduled_time=None)
        self.store.save_task(canceled)
        state = self._states[task_id]
        moved = self._queues[state.queue_key].cancel(state, to_us(now))
        for each in moved:
            self._index.refresh(each, to_us(now))
        self.on_changed(canceled)
        # The tasks behind it start earlier now (the lifecycle log watches their starts).
        others = [s.task_id for s in moved if s is not state]
        for other in self.store.get_tasks(others) if others else ():
            self.on_changed(self._derived(other, self._states[other.task_id]))
        return canceled

    # --- media callbacks -------------------------------------------------------------------------
    def mark_video_ready(self, task_id: str) -> None:
        """Its clip is written (its frames are no longer needed)."""
        state = self._states.get(task_id)
        task = self.store.get_task(task_id) if state is not None else None
        if task is not None and not task.video_ready:
            ready = replace(task, video_ready=True, inputs=None)
            self.store.save_task(ready)
            state.video_ready = True
            self._index.refresh(state, to_us(self.clock.now()))
            self.on_changed(self._derived(ready, state))

    def mark_render_failed(self, task_id: str) -> None:
        state = self._states.get(task_id)
        task = self.store.get_task(task_id) if state is not None else None
        if task is not None and task.failure is None:
            spec = DashScopeError.of("internal_algo")
            failure = Failure(spec.code, spec.message, at="end")
            failed = replace(task, failure=failure, inputs=None)
            self.store.save_task(failed)
            state.failed = True
            self._index.refresh(state, to_us(self.clock.now()))
            self.on_changed(self._derived(failed, state))

    # --- expiry ----------------------------------------------------------------------------------
    def sweep_expired(self, now: datetime | None = None) -> list[Task]:
        """Forget tasks past their 24 hours and their result links' 24 hours; returns them. Each
        queue is swept from its oldest task on, up to the first one that must stay, so a sweep
        reads only what it forgets."""
        at = to_us(now or self.clock.now())
        self._index.catch_up(at)
        counts: dict[QueueKey, int] = {}
        for key, queue in self._queues.items():
            count = 0
            for state in queue.tasks:
                ended = state.end if state.end is not None else state.submit
                if at < state.submit + TTL_US or at < ended + TTL_US:
                    break
                count += 1
            if count:
                counts[key] = count
        if not counts:
            return []
        gone_ids = [s.task_id for key, count in counts.items()
                    for s in self._queues[key].tasks[:count]]
        bases = {key: _base_after(self._queues[key], count) for key, count in counts.items()}
        gone = [self._derived(t, self._states.get(t.task_id))
                for t in self.store.get_tasks(gone_ids)]
        self.store.forget_tasks(gone_ids, bases)
        for key, count in counts.items():
            self._queues[key].drop_head(count)
        for task_id in gone_ids:
            self._index.remove(self._states.pop(task_id))
        if self.on_expired is not None:
            for task in gone:
                self.on_expired(task)
        return gone

    # --- internals -------------------------------------------------------------------------------
    def cap_for(self, region: str, model: str) -> int:
        if self.max_running is not None:
            return self.max_running
        return REGIONS[region].models[model].max_running

    @staticmethod
    def _derived(task: Task, state: TaskState | None) -> Task:
        """``task`` with its start as the scheduler derives it (a copy: stored tasks are values)."""
        return replace(task, scheduled_time=state.scheduled_time if state is not None else None)


def _field(state: TaskState, name: str, now: int) -> str:
    """A task's value for an admin dump filter."""
    return state.status_at(now) if name == "status" else getattr(state, name)


def _base_after(queue: TaskQueue, count: int) -> tuple[int, ...]:
    return queue.tasks[count].before if count < len(queue.tasks) else tuple(queue.slots)


def _result_key(rng: random.Random, now: datetime, task_id: str) -> str:
    """The real result path shape: ``1d/<2 hex>/<YYYYMMDD>/<8 hex>/<uuid>.mp4`` (api-facts §8)."""
    return f"1d/{rng.getrandbits(8):02x}/{now:%Y%m%d}/{rng.getrandbits(32):08x}/{task_id}.mp4"


def default_list_window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(hours=24), now
