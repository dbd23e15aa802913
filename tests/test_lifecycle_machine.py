"""Lifecycle invariants, checked by a hypothesis state machine over create / query / cancel / list /
advance the clock / let renders finish / restart (close the emulator and open a new one on the same
data dir, so the SqliteStore is part of what is checked).

After every step, for every task created so far:
- its status moved only along the allowed edges (PENDING -> RUNNING -> SUCCEEDED | FAILED,
  PENDING -> CANCELED; several at once when the clock jumps), so a terminal state never changes...
- ...except to UNKNOWN, which it answers exactly from 24 h after submit on, and never before;
- the list (no filter, and filtered by status) shows exactly the tasks a query does not answer
  UNKNOWN, each with the status the query gives;
- ``usage`` and ``video_url`` appear only on SUCCEEDED (and the clip is then complete on disk),
  ``code``/``message`` only on FAILED; submit_time never changes; the clock never goes back.

CI runs a short, derandomized exploration. A longer one:
    KF2V_LIFECYCLE_EXAMPLES=300 KF2V_LIFECYCLE_STEPS=50 .venv/bin/python -m pytest \
        tests/test_lifecycle_machine.py --hypothesis-show-statistics
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from fixtures.frames import data_url, frame_data_url, too_small
from mock_server.app import create_app
from mock_server.pipeline.keys import EMULATOR
from mock_server.tasks.models import (CANCELED, FAILED, PENDING, RUNNING, STATUSES, SUCCEEDED,
                                      TASK_TTL, UNKNOWN)
from mock_server.tasks.regions import REGIONS
from mock_server.tasks.timestamps import task_time
from tests import contract_check
from tests.conftest import CREATE, auth, create_headers
from tests.conftest import test_settings as settings_for
from tests.media_checks import top_level_boxes

# Where each status may be observed next, the clock having moved any amount (UNKNOWN aside).
REACHABLE = {
    PENDING: {PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED},
    RUNNING: {RUNNING, SUCCEEDED, FAILED},
    SUCCEEDED: {SUCCEEDED},
    FAILED: {FAILED},
    CANCELED: {CANCELED},
    UNKNOWN: {UNKNOWN},
}
# Clock steps: sub-second ones walk through PENDING and RUNNING; big ones jump to the expiry.
STEPS = [0.2, 0.5, 0.7, 1.0, 1.5, 3.0, 10.0, 3600.0, 6 * 3600.0, 23 * 3600.0 + 3599.0]
GOOD = {"first_frame_url": frame_data_url(320, 240, seed=31),
        "last_frame_url": frame_data_url(320, 240, seed=32)}
FAILS = {"first_frame_url": data_url(too_small()), "last_frame_url": GOOD["last_frame_url"]}


class Lifecycle(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="kf2v-machine-"))
        self.client: TestClient | None = None
        self.submitted: dict[str, datetime] = {}  # task id -> submit time (the frozen clock's)
        self.submit_text: dict[str, str] = {}
        self.last_seen: dict[str, str] = {}
        self.run(self.boot())
        self.now = self.emulator.clock.now()

    # --- plumbing --------------------------------------------------------------------------------
    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def boot(self) -> None:
        app = contract_check.install(create_app(settings_for(self.tmp, render_workers=1)))
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        self.emulator = app[EMULATOR]

    async def get(self, path: str) -> dict:
        response = await self.client.get(path, headers=auth())
        assert response.status == 200, await response.text()
        return await response.json()

    def teardown(self) -> None:
        if self.client is not None:
            self.run(self.client.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def move_clock(self, **change) -> None:
        async def post():
            response = await self.client.post("/_mock/clock", json=change)
            assert response.status == 200, await response.text()
            return await response.json()
        body = self.run(post())
        now = datetime.fromisoformat(body["now"])
        assert now >= self.now and body["frozen"] is True
        self.now = now

    # --- rules -----------------------------------------------------------------------------------
    @initialize(target=tasks)
    def first_task(self):
        return self.create(fails=False)

    @rule(target=tasks, fails=st.booleans())
    def create(self, fails):
        async def post():
            body = {"model": "wan2.2-kf2v-flash", "input": {"prompt": "a cat", **(FAILS if fails
                                                                                     else GOOD)},
                    "parameters": {"resolution": "480P"}}
            response = await self.client.post(CREATE, json=body, headers=create_headers())
            assert response.status == 200, await response.text()
            return await response.json()
        answer = self.run(post())
        assert answer["output"]["task_status"] == PENDING
        task_id = answer["output"]["task_id"]
        assert task_id not in self.submitted
        self.submitted[task_id] = self.now
        self.submit_text[task_id] = task_time(self.now)
        self.last_seen[task_id] = PENDING
        return task_id

    @rule(task_id=tasks)
    def cancel(self, task_id):
        async def cancel_it():
            before = (await self.get(f"/api/v1/tasks/{task_id}"))["output"]["task_status"]
            response = await self.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
            after = (await self.get(f"/api/v1/tasks/{task_id}"))["output"]["task_status"]
            return before, response.status, await response.json(), after
        before, status, body, after = self.run(cancel_it())
        if before == PENDING:  # only a PENDING task can be canceled, and then it is at once
            assert (status, after) == (200, CANCELED), body
        else:
            assert (status, body["code"], after) == (400, "UnsupportedOperation", before)

    @rule()
    def query_unknown_id(self):
        output = self.run(self.get(f"/api/v1/tasks/{uuid.uuid4()}"))["output"]
        assert output["task_status"] == UNKNOWN and set(output) == {"task_id", "task_status"}

    @rule(seconds=st.sampled_from(STEPS))
    def advance(self, seconds):
        self.move_clock(advance_seconds=seconds)

    @rule(task_id=tasks, moment=st.sampled_from(["start", "end", "expiry"]),
          offset_ms=st.sampled_from([-1, 0, 1]))
    def to_a_task_moment(self, task_id, moment, offset_ms):
        """Just before, at, or just after a task starts, ends or expires (24 h after submit), if
        the clock has not passed that moment yet. The times come from the emulator's own record
        (white box) only to aim the clock; everything checked is read over HTTP."""
        task = self.emulator.service.find(task_id)
        if moment == "expiry":
            when = self.submitted[task_id] + TASK_TTL
        elif task is None or task.scheduled_time is None:
            return
        else:
            when = task.scheduled_time if moment == "start" else task.end_time
        target = when + timedelta(milliseconds=offset_ms)
        if target >= self.now:
            self.move_clock(set=target.isoformat())

    @rule()
    def renders_finish(self):
        self.run(self.emulator.synthesizer.drain())

    @rule()
    def restart(self):
        event("restart")
        self.run(self.client.close())
        self.run(self.boot())
        # The frozen clock is where it was (its state is in the data dir, not in the settings).
        assert self.emulator.clock.now() == self.now and self.emulator.clock.frozen

    # --- invariants ------------------------------------------------------------------------------
    @invariant()
    def statuses_follow_the_lifecycle(self):
        # A clip may be written (RUNNING -> SUCCEEDED past the end) between the queries and the
        # lists; such a torn reading is read again, so the comparison is of one moment.
        for _ in range(20):
            ready = self.clips_ready()
            queried = self.query_every_task()
            listed = self.read_lists()
            if self.clips_ready() == ready:
                self.check_list(queried, listed)
                return
        raise AssertionError("clips kept being written while the invariant read the tasks")

    def clips_ready(self) -> set[str]:
        return {t.task_id for t in self.emulator.store.tasks() if t.video_ready}

    def query_every_task(self) -> dict[str, str]:
        now = self.emulator.clock.now()
        assert now == self.now
        queried = {}
        for task_id, submitted in self.submitted.items():
            body = self.run(self.get(f"/api/v1/tasks/{task_id}"))
            output = body["output"]
            status = output["task_status"]
            expired = now >= submitted + TASK_TTL
            assert (status == UNKNOWN) == expired, (task_id, status, now - submitted)
            if not expired:  # any status may end in UNKNOWN at expiry, nothing leaves it
                assert status in REACHABLE[self.last_seen[task_id]], (self.last_seen[task_id],
                                                                      status)
            if status != self.last_seen[task_id]:
                event(f"{self.last_seen[task_id]} -> {status}")  # --hypothesis-show-statistics
            self.last_seen[task_id] = status
            queried[task_id] = status
            if status == UNKNOWN:
                assert set(output) == {"task_id", "task_status"} and "usage" not in body
                continue
            assert output["submit_time"] == self.submit_text[task_id]
            assert ("usage" in body) == (status == SUCCEEDED)
            assert ("video_url" in output) == (status == SUCCEEDED)
            assert ("code" in output) == ("message" in output) == (status == FAILED)
            assert ("scheduled_time" in output) == (status in (RUNNING, SUCCEEDED, FAILED))
            if status == SUCCEEDED:
                self.check_clip(task_id)
        return queried

    def check_clip(self, task_id: str) -> None:
        task = self.emulator.store.get_task(task_id)
        path = self.emulator.synthesizer.path_for(REGIONS[task.region].result_bucket,
                                                  task.video_key)
        boxes = top_level_boxes(path.read_bytes())
        assert boxes.index("moov") < boxes.index("mdat")

    def read_lists(self) -> dict[str | None, dict]:
        """The unfiltered list, and the list filtered by each status."""
        lists = {None: self.run(self.get("/api/v1/tasks?page_size=100"))}
        for status in (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED):
            lists[status] = self.run(self.get(f"/api/v1/tasks?page_size=100&status={status}"))
        return lists

    def check_list(self, queried: dict[str, str], lists: dict[str | None, dict]) -> None:
        listed = lists[None]
        visible = {t: s for t, s in queried.items() if s != UNKNOWN}
        assert {item["task_id"]: item["status"] for item in listed["data"]} == visible
        assert listed["total"] == len(visible)
        for status in (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED):
            assert {item["task_id"] for item in lists[status]["data"]} == \
                {t for t, s in visible.items() if s == status}


assert set(REACHABLE) == set(STATUSES)

TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=int(os.environ.get("KF2V_LIFECYCLE_EXAMPLES", "12")),
    stateful_step_count=int(os.environ.get("KF2V_LIFECYCLE_STEPS", "25")),
    deadline=None)
