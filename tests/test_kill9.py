"""``kill -9`` a real ``kf2v-mock serve`` process on a data dir and start it again on the same dir:
every acknowledged task is still there in the state the clock gives it, unfinished clips are
rendered again, every served clip is complete, and links issued before the kill still verify.

States are moved with the admin clock API; renders and readiness are waited for by polling a
condition with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest

from fixtures.frames import data_url, frame_bytes, too_small
from mock_server.testing.serve_process import ServeError, ServeProcess
from tests.conftest import BJ_KEY, CREATE
from tests.media_checks import assert_clip

FIRST, LAST = frame_bytes(320, 240, seed=11), frame_bytes(320, 240, seed=12)
# No proxy, whatever the environment says: everything here is loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll ``condition`` until it returns something truthy (external events: a process, a file,
    a render on another process's threads)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Serve:
    """One ``kf2v-mock serve`` process on ``data_dir`` (a ``ServeProcess``), with the requests these
    tests send."""

    def __init__(self, data_dir: Path, *extra: str):
        # Quotas are not what these tests are about.
        self.process = ServeProcess("--no-quotas", *extra, data_dir=data_dir,
                                    workdir=data_dir.parent).start()
        self.base = self.process.root_url("cn-beijing")

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {BJ_KEY}",
                                                  "Content-Type": "application/json",
                                                  **(headers or {})})
        try:
            with _OPENER.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def create(self, first: bytes = FIRST, last: bytes = LAST) -> str:
        status, body = self.request("POST", CREATE, {
            "model": "wan2.2-kf2v-flash",
            "input": {"prompt": "a slow pan", "first_frame_url": data_url(first),
                      "last_frame_url": data_url(last)},
            "parameters": {"resolution": "480P"}}, {"X-DashScope-Async": "enable"})
        assert status == 200, body
        return body["output"]["task_id"]

    def query(self, task_id: str) -> dict:
        status, body = self.request("GET", f"/api/v1/tasks/{task_id}")
        assert status == 200, body
        return body["output"]

    def clock(self, **change: Any) -> dict:
        status, body = self.request("POST", "/_mock/clock", change) if change else \
            self.request("GET", "/_mock/clock")
        assert status == 200, body
        return body

    def wait_for_status(self, task_id: str, status: str) -> dict:
        return wait_until(lambda: (o := self.query(task_id))["task_status"] == status and o,
                          f"{task_id} to be {status}")

    def kill9(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop(timeout=60)


def download(url: str) -> bytes:
    with _OPENER.open(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def instant(clock: dict) -> datetime:
    return datetime.fromisoformat(clock["now"])


def without_url(output: dict) -> dict:
    return {k: v for k, v in output.items() if k != "video_url"}


def partial_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob(".*") if p.name.endswith((".part.mp4", ".part"))
            or p.name.startswith(".upload-")]


def test_kill_while_a_clip_is_being_written_loses_nothing(tmp_path):
    data_dir = tmp_path / "data"
    server = Serve(data_dir)
    try:
        before = server.clock(frozen=True)
        # A finished task, whose signed link is handed out before the kill.
        done = server.create()
        server.clock(advance_seconds=10)
        link = server.wait_for_status(done, "SUCCEEDED")["video_url"]
        # A task that fails at start, one canceled while PENDING, and several still to render.
        failed = server.create(first=too_small())
        canceled = server.create()
        assert server.request("POST", f"/api/v1/tasks/{canceled}/cancel")[0] == 200
        pending = [server.create() for _ in range(4)]
        seen = {t: server.query(t) for t in [done, failed, canceled, *pending]}
        assert [seen[t]["task_status"] for t in (done, failed, canceled)] == \
            ["SUCCEEDED", "PENDING", "CANCELED"]
        assert {seen[t]["task_status"] for t in pending} == {"PENDING"}
        clock = server.clock()
        # Kill while ffmpeg is writing a clip (its temp file exists).
        wait_until(lambda: partial_files(data_dir), "a clip being written")
        server.kill9()
    finally:
        server.stop()
    left_behind = partial_files(data_dir)
    assert left_behind, "the kill was meant to interrupt a render"

    server = Serve(data_dir)
    try:
        # Half-written files are gone before the first request is served.
        assert not [p for p in left_behind if p.exists()]
        # The frozen clock resumed exactly where it stood; every task is as it was.
        assert server.clock() == clock and instant(clock) > instant(before)
        # (A SUCCEEDED answer's video_url names the listener's address, which is new.)
        assert {t: without_url(server.query(t)) for t in seen} == \
            {t: without_url(o) for t, o in seen.items()}
        # The link from before the kill still verifies (the signing secret was kept); the
        # listener's port is new (port 0), the path and signature are the old ones.
        old = urlsplit(link)
        assert_clip(download(f"{server.base}{old.path}?{old.query}"), first=FIRST, last=LAST,
                    resolution="480P")

        server.clock(advance_seconds=10)
        assert server.query(failed)["code"] == "InvalidParameter"
        assert server.query(canceled)["task_status"] == "CANCELED"
        for task_id in pending:  # rendered again from the frames kept at submit
            output = server.wait_for_status(task_id, "SUCCEEDED")
            assert output["submit_time"] == seen[task_id]["submit_time"]
            assert_clip(download(output["video_url"]), first=FIRST, last=LAST, resolution="480P")
        assert not partial_files(data_dir)
        assert not list((data_dir / "inputs").iterdir())  # kept frames go once clips exist
    finally:
        server.stop()


def test_kill_during_bursts_of_creates_keeps_every_acknowledged_task(tmp_path):
    """Three rounds: creates in flight from two clients, killed after a few were answered (the
    later rounds also while the previous round's clips are being rendered again)."""
    data_dir = tmp_path / "data"
    acknowledged: list[str] = []
    for round_no, kill_after in enumerate((1, 3, 2)):
        server = Serve(data_dir)
        try:
            if round_no == 0:
                server.clock(frozen=True)
            # Everything acknowledged so far survived the previous kill.
            assert {t: server.query(t)["task_status"] for t in acknowledged} == \
                {t: "PENDING" for t in acknowledged}
            answered: list[str] = []
            stop = threading.Event()

            def client() -> None:
                while not stop.is_set():
                    try:
                        answered.append(server.create())
                    except Exception:  # the server died under this request: not acknowledged
                        return

            threads = [threading.Thread(target=client) for _ in range(2)]
            for thread in threads:
                thread.start()
            wait_until(lambda: len(answered) >= kill_after, f"{kill_after} acknowledged creates")
            server.kill9()
            stop.set()
            for thread in threads:
                thread.join(30)
            acknowledged += answered
        finally:
            stop.set()
            server.stop()

    server = Serve(data_dir)
    try:
        status, everything = server.request("GET", "/_mock/tasks")
        assert set(acknowledged) <= {t["task_id"] for t in everything["tasks"]}
        server.clock(advance_seconds=600)  # two at a time per account: time for all to run
        for task_id in acknowledged:
            output = server.wait_for_status(task_id, "SUCCEEDED")
            assert_clip(download(output["video_url"]), first=FIRST, last=LAST, resolution="480P")
        # A create the kill cut off before its answer may have been kept too (never promised,
        # allowed): its clip may still be rendering. Nothing half-written once every clip is done.
        wait_until(lambda: not any(t["failure"] is None and not t["video_ready"]
                                   and t["canceled_time"] is None
                                   for t in server.request("GET", "/_mock/tasks")[1]["tasks"]),
                   "every kept task's clip")
        assert not partial_files(data_dir)
    finally:
        server.stop()


def test_a_running_clock_continues_after_a_kill_and_never_goes_back(tmp_path):
    data_dir = tmp_path / "data"
    server = Serve(data_dir)
    try:
        set_to = server.clock(set="2031-01-01T00:00:00+00:00")["now"]
        task_id = server.create()
        last_seen = server.query(task_id)
        before = server.clock()
        assert before["frozen"] is False and instant(before) >= datetime.fromisoformat(set_to)
        # A second process on the same data dir is refused (it would hand out the same ids).
        second = ServeProcess(data_dir=data_dir, workdir=tmp_path / "second", quiet=False)
        with pytest.raises(ServeError):
            second.start()
        # A start-up problem: one line, exit status 2 (tests/test_startup.py).
        assert second.process.returncode == 2 and "in use by another kf2v-mock" in second.logs()
        server.kill9()
    finally:
        server.stop()
    killed_at = time.time()

    server = Serve(data_dir)
    try:
        after = server.clock()
        assert after["frozen"] is False and instant(after) >= instant(before)
        # It went on from where it was, by about the real time that passed - not from "now".
        gap = (instant(after) - instant(before)).total_seconds()
        assert gap <= time.time() - killed_at + 60
        assert server.query(task_id)["submit_time"] == last_seen["submit_time"]
    finally:
        server.stop()
