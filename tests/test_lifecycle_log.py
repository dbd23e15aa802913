"""One log line per task transition, with the task id and the request id; noticed as time passes
(clock jumps, the sweeper, requests) at a cost that does not grow with the stored tasks; text or
JSON lines, --log-level, --quiet."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from mock_server import logs
from mock_server.cli import build_parser
from mock_server.store.memory import InMemoryStore
from mock_server.tasks.clock import VirtualClock
from mock_server.tasks.lifecycle import LifecycleLog
from mock_server.testing.serve_process import ServeProcess
from tests.conftest import T0, auth, create, create_headers, kf2v_body

DAY = 24 * 3600


def events(caplog, task_id: str) -> list[str]:
    return [r.event for r in caplog.records
            if r.name == "kf2v_mock.lifecycle" and getattr(r, "task_id", None) == task_id]


def lifecycle_only(names: list[str]) -> list[str]:
    return [n for n in names if not n.startswith("render_")]


async def test_a_task_from_submit_to_file_deleted(client, caplog):
    caplog.set_level(logging.INFO, logger="kf2v_mock.lifecycle")
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    await client.emulator.synthesizer.drain()
    client.emulator.clock.advance(1.0)
    client.emulator.clock.advance(10)
    client.emulator.clock.advance(DAY)
    names = events(caplog, task_id)
    assert lifecycle_only(names) == ["created", "running", "succeeded", "expired", "link_expired",
                                     "file_deleted"]
    assert names.index("render_start") < names.index("render_finish")
    records = [r for r in caplog.records if getattr(r, "task_id", None) == task_id]
    assert {r.request_id for r in records} == {created["request_id"]}
    finish = next(r for r in records if r.event == "render_finish")
    assert finish.seconds > 0 and "render finished in" in finish.getMessage()
    running = next(r for r in records if r.event == "running")
    task = client.emulator.lifecycle.forgotten[-1]
    assert running.virtual_time == task.scheduled_time.isoformat()
    assert f"task {task_id} RUNNING at={task.scheduled_time.isoformat()} request_id=" in \
        running.getMessage()


async def test_failed_canceled_and_a_late_clip(make_client, caplog):
    caplog.set_level(logging.INFO, logger="kf2v_mock.lifecycle")
    client = await make_client(max_running=1)
    await client.post("/_mock/faults", json={"task_failure": {"code": "InternalError.Algo",
                                                              "at": "end"}, "times": 1})
    failing = (await create(client))[1]["output"]["task_id"]
    waiting = (await create(client))[1]["output"]["task_id"]
    await client.post(f"/api/v1/tasks/{waiting}/cancel", headers=auth())
    client.emulator.clock.advance(30)
    assert lifecycle_only(events(caplog, failing)) == ["created", "running", "failed"]
    failed = next(r for r in caplog.records if getattr(r, "event", "") == "failed")
    assert failed.code == "InternalError.Algo" and "FAILED InternalError.Algo" in failed.getMessage()
    assert lifecycle_only(events(caplog, waiting)) == ["created", "canceled"]
    # The clock passes a task's end before its clip is written: SUCCEEDED comes with the clip.
    slow = (await create(client))[1]["output"]["task_id"]
    client.emulator.clock.advance(30)
    assert lifecycle_only(events(caplog, slow)) == ["created", "running"]
    await client.emulator.synthesizer.drain()
    assert lifecycle_only(events(caplog, slow))[-1] == "succeeded"
    late = [r for r in caplog.records if getattr(r, "event", "") == "succeeded"][-1]
    assert "written after its end time" in late.getMessage()


async def test_a_request_logs_what_came_due_before_its_own_line(make_client, caplog):
    caplog.set_level(logging.INFO, logger="kf2v_mock")
    client = await make_client(clock_frozen=False, log_requests=True)
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    await client.emulator.synthesizer.drain()
    # The clock runs: no jump, no sweep needed; the next request notices what is due.
    client.emulator.clock._anchor_virtual += timedelta(seconds=10)  # time passes by itself
    await client.get(f"/api/v1/tasks/{task_id}", headers=auth())
    lines = [(r.name, getattr(r, "event", None)) for r in caplog.records]
    poll = max(i for i, (name, _) in enumerate(lines) if name == "kf2v_mock.requests")
    assert ("kf2v_mock.lifecycle", "succeeded") in lines[:poll]


class CountingStore(InMemoryStore):
    def __init__(self):
        super().__init__()
        self.reads = 0

    def get_task(self, task_id):
        self.reads += 1
        return super().get_task(task_id)

    def tasks(self):
        self.reads += 1000
        return super().tasks()


def test_a_tick_costs_what_is_due_not_what_is_stored(tmp_path):
    from mock_server.tasks.accounts import KeyRing
    from mock_server.tasks.service import TaskService
    store = CountingStore()
    clock = VirtualClock(T0, frozen=True)
    service = TaskService(store, clock)
    lifecycle = LifecycleLog(service.find, clock)
    service.on_changed = lifecycle.changed
    account = KeyRing([]).keys()[0]
    from mock_server.api.create_body import parse_create_body
    from mock_server.tasks.regions import REGIONS
    spec = parse_create_body(kf2v_body(), REGIONS["cn-beijing"])
    clock.on_change(lifecycle.tick)  # as the emulator's sweep does on every jump
    for n in range(300):
        clock.advance(1)
        service.create(account, spec, f"r{n}")
    store.reads = 0
    lifecycle.tick(clock.now())  # nothing due: 300 tasks stored, not one read
    assert store.reads == 0
    clock.advance(0.95)  # the newest task's start (0.5-0.9 s) and a few ends are due
    assert 0 < store.reads <= 5


# --- formats and levels -------------------------------------------------------------------------------
def test_json_lines_carry_every_field():
    record = logging.LogRecord("kf2v_mock.lifecycle", logging.INFO, __file__, 1, "task %s RUNNING",
                               ("t1",), None)
    record.event, record.task_id, record.request_id = "running", "t1", "r1"
    line = json.loads(logs.JsonLines().format(record))
    assert line["message"] == "task t1 RUNNING" and line["level"] == "INFO"
    assert (line["event"], line["task_id"], line["request_id"]) == ("running", "t1", "r1")
    assert line["logger"] == "kf2v_mock.lifecycle" and line["time"].endswith("+00:00")


def test_flags_and_quiet(monkeypatch):
    args = build_parser().parse_args(["serve", "--log-level", "warning", "--log-format", "json"])
    assert (args.log_level, args.log_format) == ("warning", "json")
    monkeypatch.setenv("KF2V_MOCK_LOG_FORMAT", "json")
    assert build_parser().parse_args(["serve"]).log_format == "json"
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        logs.setup("info", "text", quiet=True)
        for name in logs.CHATTY:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger("kf2v_mock").isEnabledFor(logging.INFO)
        logs.setup("info", "text", quiet=False)
        assert logging.getLogger("kf2v_mock.lifecycle").isEnabledFor(logging.INFO)
    finally:
        for name in logs.CHATTY:
            logging.getLogger(name).setLevel(logging.NOTSET)
        root.setLevel(saved[0])
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[1]:
            root.addHandler(handler)


def test_serve_logs_json_lines_with_reasons_and_transitions(tmp_path):
    import urllib.request
    with ServeProcess("--log-format", "json", quiet=False) as server:
        base = server.urls["cn-beijing"]
        root = server.root_url("cn-beijing")
        body = json.dumps(kf2v_body()).encode()
        created = json.loads(urllib.request.urlopen(urllib.request.Request(
            base + "/services/aigc/image2video/video-synthesis", data=body,
            headers=create_headers())).read())
        bad = urllib.request.Request(base + "/services/aigc/image2video/video-synthesis",
                                     data=b"{", headers=create_headers())
        try:
            urllib.request.urlopen(bad)
        except urllib.error.HTTPError as error:
            assert error.code == 400
        deadline = time.monotonic() + 60  # the other process renders the clip
        while not json.loads(urllib.request.urlopen(root + "/_mock/tasks").read())["tasks"][0][
                "video_ready"]:
            assert time.monotonic() < deadline, "the clip was not rendered in 60 s"
            time.sleep(0.1)
        urllib.request.urlopen(urllib.request.Request(
            root + "/_mock/clock", data=json.dumps({"advance_seconds": 2 * DAY}).encode()))
        logs_text = server.logs()
    lines = [json.loads(line) for line in logs_text.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([line for line in logs_text.splitlines() if line.strip()])
    task_events = [line["event"] for line in lines
                   if line.get("task_id") == created["output"]["task_id"]]
    assert {"created", "expired", "file_deleted"} <= set(task_events)
    refused = [line for line in lines if line.get("code") == "InvalidParameter"]
    assert refused and refused[0]["reason"].startswith("the body is not JSON")
