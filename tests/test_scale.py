"""Costs that do not grow with history (issue 15), checked by what each operation touches, not by
timing it (tests/../benchmarks/bench_scale.py measures the times, side by side):

- the incremental queue (scheduler.TaskQueue) places tasks exactly as the reference rule over the
  whole list does, through creates, cancels and sweeps, and a restart derives the same starts;
- the list indexes (task_index.TaskIndex) answer exactly what filtering every task would, at any
  moment, for every filter;
- a create writes one row and touches no other task; a query reads one row; a list reads one page
  of rows; a cancel writes one row; a sweep reads only what it forgets;
- a stored task is a small row without its frames, and the SQLite WAL stays bounded under
  sustained writes;
- the admin dump pages.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import tracemalloc
from dataclasses import replace
from datetime import timedelta
from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.store.memory import InMemoryStore
from mock_server.store.sqlite import DB_NAME, SqliteStore
from mock_server.tasks.clock import VirtualClock
from mock_server.tasks.models import STATUSES, TASK_TTL, UNKNOWN, Account, Failure, TaskSpec
from mock_server.tasks.scheduler import TaskQueue, assign_start_times, from_us, to_us
from mock_server.tasks.service import ListQuery, TaskService
from mock_server.tasks.task_index import TaskState
from tests.conftest import T0, create, query

SPEC = TaskSpec("wan2.2-kf2v-flash", "data:", "data:", "p", None, None, "480P", 5, False, False, 1)
PLUS = replace(SPEC, model="wanx2.1-kf2v-plus", resolution="720P")
ALICE = Account("acct-a", "cn-beijing", "sk-a", "111111")
ALICE_2 = Account("acct-a", "cn-beijing", "sk-a2", "222222")  # a second key of the same account
BOB = Account("acct-b", "cn-beijing", "sk-b", "333333")


# --- the queue is the reference rule, kept incrementally ------------------------------------------
def _state(task_id, sequence, submit, wait, run, failed_at_start=False) -> TaskState:
    submit_us = to_us(T0) + int(submit * 1e6)
    return TaskState(task_id=task_id, sequence=sequence, region="r", account_id="a",
                     api_key_id="k", model="m", submit=submit_us, ready=submit_us + int(wait * 1e6),
                     run=0 if failed_at_start else int(run * 1e6), canceled=None, failed=False,
                     video_ready=True)


class _AsTask:
    """What ``assign_start_times`` reads of a task, from a state."""
    def __init__(self, state: TaskState):
        self.task_id, self.sequence = state.task_id, state.sequence
        self.submit_time = from_us(state.submit)
        self.queue_wait = (state.ready - state.submit) / 1e6
        self.run_time = state.run / 1e6
        self.canceled_time = from_us(state.canceled) if state.canceled is not None else None
        self.failure = Failure("c", "m", "start") if state.run == 0 else None


operations = st.lists(st.tuples(st.sampled_from(["create", "create", "cancel", "sweep"]),
                                st.floats(0, 5), st.floats(0, 30), st.floats(0, 40),
                                st.booleans(), st.integers(0, 10 ** 6)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(1, 3))
def test_the_queue_places_tasks_as_the_reference_rule_does(ops, cap):
    queue = TaskQueue(cap)
    now, live, base = 0.0, [], ()
    for n, (kind, step, wait, run, zero_run, pick) in enumerate(ops):
        now += step
        at = to_us(T0) + int(now * 1e6)
        if kind == "create":
            state = _state(f"t{n}", n, now, wait, max(run, 0.001), zero_run)
            queue.append(state)
            live.append(state)
        elif kind == "cancel":
            pending = [s for s in live if s.canceled is None and (s.start is None or at < s.start)]
            if pending:
                queue.cancel(pending[pick % len(pending)], at)
        elif queue.tasks:  # sweep the oldest, as if expired
            count = pick % len(queue.tasks) + 1
            base = queue.drop_head(count)
            live = live[count:]
        reference = assign_start_times([_AsTask(s) for s in live], cap, [from_us(b) for b in base])
        assert {s.task_id: s.scheduled_time for s in live} == reference


# --- the list indexes answer what filtering every task would --------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 3))
def test_every_list_answers_as_filtering_every_task_would(rng, cap):
    clock = VirtualClock(T0, frozen=True)
    service = TaskService(InMemoryStore(), clock, seed=1, max_running=cap)
    ids: list[str] = []
    for step in range(60):
        action = rng.random()
        if action < 0.55:
            account = rng.choice([ALICE, ALICE_2, BOB])
            failure = (Failure("c", "m", rng.choice(["start", "end"])) if rng.random() < 0.2
                       else None)
            ids.append(service.create(account, rng.choice([SPEC, PLUS]), f"r{step}",
                                      failure=failure).task_id)
        elif action < 0.7 and ids:
            task_id = rng.choice(ids)
            task = service.find(task_id)
            if task is not None and task.status_at(clock.now()) == "PENDING":
                service.cancel(ALICE if task.account_id == "acct-a" else BOB, task_id)
        elif action < 0.8 and ids:
            service.mark_video_ready(rng.choice(ids))
        elif action < 0.85 and ids:
            service.mark_render_failed(rng.choice(ids))
        else:
            clock.advance(rng.choice([0.3, 0.8, 2, 5, 60, 3600, 6 * 3600]))
            if rng.random() < 0.5:
                service.sweep_expired()
        if step % 6 == 5:
            _check_lists(service, clock, rng)


def _check_lists(service: TaskService, clock: VirtualClock, rng: random.Random) -> None:
    now = clock.now()
    everything = [service.find(t.task_id) for t in service.store.tasks()]
    filters = list(product((None, SPEC.model, PLUS.model), (None, "111111", "222222"),
                           (None, *STATUSES)))
    for account in (ALICE, BOB):
        start = now - timedelta(hours=rng.choice([24, 1, 0.001]))
        for model, key, status in [(None, None, None), *rng.sample(filters, 12)]:
            expected = [t for t in everything
                        if t.account_id == account.account_id
                        and start <= t.submit_time <= now
                        and t.status_at(now) != UNKNOWN and model in (None, t.spec.model)
                        and key in (None, t.api_key_id)
                        and status in (None, t.status_at(now))]
            expected.sort(key=lambda t: t.sequence, reverse=True)
            size = rng.choice([1, 3, 100])
            page = rng.randint(1, 3)
            query = ListQuery(start=start, end=now, model_name=model, api_key_id=key,
                              status=status, page_no=page, page_size=size)
            total, tasks = service.list(account, query)
            assert total == len(expected)
            wanted = expected[(page - 1) * size:page * size]
            assert [t.task_id for t in tasks] == [t.task_id for t in wanted]
            assert [t.status_at(now) for t in tasks] == [t.status_at(now) for t in wanted]


# --- what each operation touches ------------------------------------------------------------------
class CountingStore(InMemoryStore):
    """Counts the calls that read or write tasks."""

    def __init__(self):
        super().__init__()
        self.calls: dict[str, int] = {}
        self.rows_read = 0

    def _count(self, name: str, rows: int = 0) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.rows_read += rows

    def add_task(self, task):
        self._count("add_task")
        super().add_task(task)

    def save_task(self, task):
        self._count("save_task")
        super().save_task(task)

    def get_task(self, task_id):
        self._count("get_task", 1)
        return super().get_task(task_id)

    def get_tasks(self, task_ids):
        self._count("get_tasks", len(task_ids))
        found = (InMemoryStore.get_task(self, t) for t in task_ids)
        return [task for task in found if task is not None]

    def iter_tasks(self):
        self._count("iter_tasks")
        return super().iter_tasks()

    def take(self) -> tuple[dict[str, int], int]:
        calls, rows = self.calls, self.rows_read
        self.calls, self.rows_read = {}, 0
        return calls, rows


def test_no_operation_reads_or_writes_more_than_it_answers_with():
    store = CountingStore()
    clock = VirtualClock(T0, frozen=True)
    service = TaskService(store, clock, seed=1)
    store.take()
    ids = []
    for n in range(400):  # one queue 400 deep at a frozen clock: the case that was O(n) a create
        ids.append(service.create(ALICE, SPEC, f"r{n}").task_id)
        assert store.take() == ({"add_task": 1}, 0)
    service.get(ALICE, ids[200])
    assert store.take() == ({"get_task": 1}, 1)
    window = ListQuery(start=T0 - timedelta(hours=1), end=T0, page_size=10)
    total, page = service.list(ALICE, window)
    assert total == 400 and len(page) == 10
    assert store.take() == ({"get_tasks": 1}, 10)
    total, _ = service.list(ALICE, replace(window, status="PENDING", page_no=7))
    assert total == 400 and store.take()[1] == 10
    service.cancel(ALICE, ids[-1])  # the newest: nothing behind it in its queue
    assert store.take() == ({"get_task": 1, "save_task": 1}, 1)
    clock.advance(10)
    service.sweep_expired()
    assert store.take() == ({}, 0)  # nothing expired: nothing read
    clock.advance(TASK_TTL.total_seconds() + 3600)  # now part of the queue has expired
    swept = service.sweep_expired()
    calls, rows = store.take()
    assert swept and rows == len(swept) and "iter_tasks" not in calls


def test_a_cancel_moves_only_the_tasks_behind_it():
    service = TaskService(InMemoryStore(), VirtualClock(T0, frozen=True), seed=1)
    ids = [service.create(ALICE, SPEC, f"r{n}").task_id for n in range(50)]
    before = {t: service.find(t).scheduled_time for t in ids}
    service.cancel(ALICE, ids[30])
    after = {t: service.find(t).scheduled_time for t in ids}
    assert all(before[t] == after[t] for t in ids[:30])
    assert after[ids[30]] is None
    assert all(after[t] <= before[t] for t in ids[31:]) and after != before


def test_pending_status_events_stay_bounded_when_cancels_move_every_start_behind_them():
    clock = VirtualClock(T0, frozen=True)  # nothing ever comes due
    service = TaskService(InMemoryStore(), clock, seed=1)
    ids = [service.create(ALICE, SPEC, f"r{n}").task_id for n in range(400)]
    for task_id in ids[:200]:
        service.cancel(ALICE, task_id)  # about 40,000 starts moved in all
    index = service._index
    assert len(index._events) <= 2 * len(index) + 1024
    clock.advance(150)  # half the queue has run: every task is still filed where it belongs
    _check_lists(service, clock, random.Random(3))


def test_made_up_model_names_do_not_grow_the_quota_windows():
    from mock_server.tasks.errors import DashScopeError
    from mock_server.traffic.quotas import Quotas
    quotas = Quotas(VirtualClock(T0, frozen=True), policy_qps=10 ** 6)
    for n in range(2000):
        try:
            quotas.admit(ALICE, "get_policy", f"made-up-{n}")
            quotas.admit(ALICE, "create", f"made-up-{n}")
        except DashScopeError:
            pass
    assert len(quotas._windows) <= 2


def test_a_restart_after_sweeps_places_the_remaining_tasks_as_before(tmp_path):
    clock = VirtualClock(T0, frozen=True)
    service = TaskService(SqliteStore(tmp_path), clock, seed=1, max_running=1)
    early = [service.create(ALICE, SPEC, f"e{n}").task_id for n in range(5)]
    clock.advance(TASK_TTL.total_seconds() - 2)
    late = [service.create(ALICE, SPEC, f"l{n}").task_id for n in range(5)]
    clock.advance(5)  # the early ones' 24 hours are over; their queue still runs (cap 1)
    for _ in range(5):
        clock.advance(3600)
        service.sweep_expired()
    starts = {t: service.find(t).scheduled_time for t in late}
    assert all(service.find(t) is None for t in early)
    service.store.close()
    again = TaskService(SqliteStore(tmp_path), clock, seed=1, max_running=1)
    assert {t: again.find(t).scheduled_time for t in late} == starts
    again.store.close()


# --- small rows, bounded WAL ----------------------------------------------------------------------
async def test_a_task_row_holds_a_reference_to_its_frames_not_their_bytes(make_client,
                                                                        monkeypatch):
    client = await make_client()
    synthesizer = client.emulator.synthesizer
    seen = []
    real_accept = synthesizer.accept

    def accept(task, bucket, inputs):
        folder = synthesizer.inputs_path(task.inputs)
        seen.append((task.inputs == inputs.ref, (folder / "first").read_bytes()[:4]))
        real_accept(task, bucket, inputs)
    monkeypatch.setattr(synthesizer, "accept", accept)
    status, body = await create(client)
    assert status == 200
    assert seen == [(True, b"\x89PNG")]  # stored with a reference to frames already on disk
    db = sqlite3.connect(client.emulator.data_dir / DB_NAME)
    (row,) = db.execute("SELECT data FROM tasks").fetchone()
    db.close()
    assert "iVBORw0KGgo" not in row and len(row) < 1000, row  # no PNG in base64
    await synthesizer.drain()  # rendered: the frames and the reference go
    assert client.emulator.store.get_task(body["output"]["task_id"]).inputs is None
    assert list(client.emulator.inputs_dir.iterdir()) == []


def test_the_wal_stays_bounded_under_sustained_writes(tmp_path):
    """Creates without a pause while another thread checkpoints, as the app's worker does: a
    checkpoint that only copies what it can (PASSIVE) never lets the WAL start over then, and it
    grew by about 14 KB a task for good (2.9 GB at 1.6k tasks with the old rows)."""
    store = SqliteStore(tmp_path)
    service = TaskService(store, VirtualClock(T0, frozen=True), seed=1)
    wal = tmp_path / (DB_NAME + "-wal")
    done = threading.Event()

    def checkpoints():
        while not done.is_set():
            store.checkpoint()
            time.sleep(0.02)  # the app's worker does this every second
    worker = threading.Thread(target=checkpoints)
    worker.start()
    largest = 0
    try:
        for n in range(10000):
            service.create(ALICE, SPEC, f"r{n}")
            if n % 200 == 0:
                largest = max(largest, wal.stat().st_size)
    finally:
        done.set()
        worker.join()
        store.close()
    # About a second of writes in the app (a few MiB here, with a checkpoint every 20 ms; more if
    # the machine starves the checkpointing thread a while); without the RESTART it was ~140 MiB.
    assert largest < 48 * 2 ** 20, f"the WAL reached {largest / 2 ** 20:.0f} MiB"


def test_the_service_memory_per_task_is_small(tmp_path):
    store = SqliteStore(tmp_path)
    clock = VirtualClock(T0, frozen=True)
    service = TaskService(store, clock, seed=1)
    for n in range(3000):
        service.create(ALICE if n % 2 else BOB, SPEC if n % 3 else PLUS, f"r{n}")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    service.reload()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    store.close()
    assert grown / 3000 < 1500, f"{grown / 3000:.0f} bytes per task"


# --- the admin dump pages -------------------------------------------------------------------------
async def test_the_admin_task_dump_pages(make_client):
    client = await make_client()
    created = [(await create(client))[1]["output"]["task_id"] for _ in range(7)]
    everything = await (await client.get("/_mock/tasks")).json()
    assert [t["task_id"] for t in everything["tasks"]] == created  # oldest first, as before
    assert (everything["total"], everything["older"]) == (7, None)
    pages, cursor = [], None
    while True:  # the newest 3, then the 3 before them, ...
        page = await (await client.get("/_mock/tasks", params={
            "limit": "3", **({"before": cursor} if cursor else {})})).json()
        assert len(page["tasks"]) <= 3 and page["total"] == 7
        pages.append([t["task_id"] for t in page["tasks"]])
        cursor = page["older"]
        if cursor is None:
            break
    assert pages == [created[4:], created[1:4], created[:1]]
    await client.post(f"/api/v1/tasks/{created[5]}/cancel", headers={"Authorization":
                                                                    "Bearer sk-kf2v-mock-beijing"})
    filtered = await (await client.get("/_mock/tasks?status=CANCELED&limit=1")).json()
    assert ([t["task_id"] for t in filtered["tasks"]], filtered["older"]) == ([created[5]], None)
    for bad in ({"limit": "-1"}, {"limit": "1001"}, {"limit": "x"}, {"before": "0"},
                {"before": "9" * 5000}, {"after": "1"}):
        response = await client.get("/_mock/tasks", params=bad)
        assert response.status == 400, bad
        assert (await response.json())["code"] == "InvalidParameter"


def test_schema_1_data_dirs_are_migrated(tmp_path):
    """A data dir written before issue 15 (whole-document rows, data: URLs, frames under
    inputs/<task_id>) opens as schema 2, every record intact."""
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript("""
        CREATE TABLE tasks (task_id TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE policies (upload_dir TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE uploads (key TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE fault_rules (id TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        PRAGMA user_version=1;
    """)
    when = {"$datetime": T0.isoformat()}
    spec = {"model": "wan2.2-kf2v-flash", "first_frame_url": "data:image/png;base64," + "A" * 5000,
            "last_frame_url": "https://example.com/l.png", "prompt": "一只猫",
            "negative_prompt": None,
            "template": None, "resolution": "480P", "duration": 5, "prompt_extend": True,
            "watermark": False, "seed": None}
    task = {"task_id": "t-1", "request_id": "r", "region": "cn-beijing", "account_id": "a",
            "api_key_id": "k", "spec": spec, "seed": 7, "submit_time": when, "queue_wait": 0.5,
            "run_time": 1.5, "sequence": 3, "actual_prompt": None, "width": 640, "height": 480,
            "scheduled_time": when, "canceled_time": None, "failure": None, "video_ready": False,
            "video_key": "1d/x.mp4"}
    upload = {"key": "d/f.png", "account_id": "a", "region": "cn-beijing",
              "model": "wan2.2-kf2v-flash", "path": "/x", "size": 3, "content_type": "image/png",
              "created": when}
    policy = {"upload_dir": "d", "account_id": "a", "region": "cn-beijing",
              "model": "wan2.2-kf2v-flash", "expires": when, "max_bytes": 9}
    db.execute("INSERT INTO tasks VALUES (?, ?)", ("t-1", json.dumps(task)))
    db.execute("INSERT INTO uploads VALUES (?, ?)", ("d/f.png", json.dumps(upload)))
    db.execute("INSERT INTO policies VALUES (?, ?)", ("d", json.dumps(policy)))
    db.execute("INSERT INTO counters VALUES ('sequence', 3)")
    db.execute("INSERT INTO meta VALUES ('clock', '{}')")
    db.commit()
    db.close()
    store = SqliteStore(tmp_path)
    try:
        (migrated,) = store.tasks()
        assert (migrated.task_id, migrated.sequence, migrated.submit_time) == ("t-1", 3, T0)
        assert migrated.inputs == "t-1"  # schema 1 kept the frames in inputs/<task_id>
        assert migrated.spec.first_frame_url == "<data URL elided: image/png, 3750 bytes>"
        assert migrated.spec.last_frame_url == "https://example.com/l.png"
        assert migrated.scheduled_time is None
        assert store.get_upload("d/f.png").created == T0 and store.get_policy("d").expires == T0
        assert store.next_sequence() == 4 and store.get_meta("clock") == "{}"
    finally:
        store.close()


# --- the benchmarks' --no-render ------------------------------------------------------------------
async def test_no_render_keeps_no_frames_and_tasks_succeed_without_a_clip(make_client):
    client = await make_client(render=False)
    status, body = await create(client)
    assert status == 200
    task_id = body["output"]["task_id"]
    client.emulator.clock.advance(10)
    await client.emulator.synthesizer.drain()
    output = (await query(client, task_id))["output"]
    assert output["task_status"] == "SUCCEEDED"
    link = output["video_url"]
    response = await client.get(link[link.index("/", len("http://")):])
    assert response.status == 404  # no clip was made
    assert not client.emulator.inputs_dir.exists() or not list(client.emulator.inputs_dir.iterdir())


def test_the_no_render_flag(monkeypatch):
    from mock_server.cli import build_parser, settings_from_args

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["serve", *argv]))
    assert settings().render is True and settings("--no-render").render is False
    monkeypatch.setenv("KF2V_MOCK_NO_RENDER", "1")
    assert settings().render is False
