"""Renders out of the server process (``media/worker.py``), the clip cache (``tasks/clip_cache.py``)
and clips that are byte-identical whatever the machine's cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.frames import frame_bytes
from mock_server.cli import StartupError, build_parser, settings_from_args
from mock_server.media import worker
from mock_server.media.render import RenderError, RenderRequest, render_clip, request_digest
from mock_server.tasks import rendering
from mock_server.tasks.clip_cache import ClipCache
from mock_server.tasks.models import TASK_TTL
from tests.conftest import create, kf2v_body, query

ROOT = Path(__file__).resolve().parents[1]
FIRST, LAST = frame_bytes(320, 240, seed=31), frame_bytes(320, 240, seed=32)


def small_request(**changes) -> RenderRequest:
    values = dict(first_image=FIRST, last_image=LAST, width=160, height=128, seed=9,
                  prompt="zoom in", preset="ultrafast")
    values.update(changes)
    return RenderRequest(**values)


def seeded_body(seed: int) -> dict:
    body = kf2v_body()
    body["parameters"]["seed"] = seed
    return body


def wait_until(condition, what: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- worker processes ---------------------------------------------------------------------------
def test_a_worker_renders_the_same_bytes_at_a_lower_priority_and_is_reused(tmp_path):
    worker.close_idle_workers()
    request = small_request()
    render_clip(request, tmp_path / "here.mp4")
    worker.render_in_worker(request, tmp_path / "there.mp4")
    assert (tmp_path / "there.mp4").read_bytes() == (tmp_path / "here.mp4").read_bytes()
    [used] = worker._idle
    assert used.process.pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, used.process.pid) == \
        min(19, os.getpriority(os.PRIO_PROCESS, 0) + worker.WORKER_NICE)
    # Its own process group (killed as one), but the caller's session: with autogroup
    # scheduling, niceness ranks processes only within one session.
    assert os.getpgid(used.process.pid) == used.process.pid
    assert os.getsid(used.process.pid) == os.getsid(0)
    worker.render_in_worker(small_request(seed=10), tmp_path / "again.mp4")
    assert worker._idle == [used]  # one worker, kept for the next render


def test_a_failed_or_dead_worker_fails_only_its_render(tmp_path):
    with pytest.raises(RenderError, match="UnidentifiedImageError"):
        worker.render_in_worker(small_request(first_image=b"no image"), tmp_path / "x.mp4")
    assert not list(tmp_path.iterdir())  # nothing half-written left
    [kept] = worker._idle  # an error answer leaves the worker usable
    os.killpg(kept.process.pid, signal.SIGKILL)
    kept.process.wait()
    worker.render_in_worker(small_request(), tmp_path / "ok.mp4")  # a new worker takes over
    assert (tmp_path / "ok.mp4").stat().st_size > 1000


def test_workers_go_when_their_parent_is_killed(tmp_path):
    code = ("import sys; from mock_server.media import worker; "
            "from tests.test_render_workers import small_request; "
            f"worker.render_in_worker(small_request(), {str(tmp_path / 'c.mp4')!r}); "
            "print(worker._idle[0].process.pid, flush=True); sys.stdin.read()")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert pid_alive(child)
        parent.kill()  # kill -9: no atexit, no cleanup
        parent.wait()
        wait_until(lambda: not pid_alive(child), "the orphaned worker to exit", timeout=10)
    finally:
        parent.kill()
        parent.wait()


# --- the same bytes on any machine -------------------------------------------------------------
@pytest.mark.parametrize("size", [(320, 240), (1296, 896)], ids=["frame threads", "sliced threads"])
def test_clips_do_not_depend_on_the_number_of_cores(tmp_path, size):
    """x264's output depends on its thread count: it is fixed per output size, never taken from
    the machine. Rendered on one core and on every core, the bytes are the same."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores to compare against 1")
    width, height = size
    code = ("import os, sys; from mock_server.media.render import render_clip; "
            "from tests.test_render_workers import small_request; "
            "cores = {int(c) for c in sys.argv[2].split(',')}; os.sched_setaffinity(0, cores); "
            f"render_clip(small_request(width={width}, height={height}), sys.argv[1])")
    cores = sorted(os.sched_getaffinity(0))
    outputs = []
    for name, pinned in (("one", cores[:1]), ("all", cores)):
        out = tmp_path / f"{name}.mp4"
        subprocess.run([sys.executable, "-c", code, str(out), ",".join(map(str, pinned))],
                       cwd=ROOT, check=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_the_digest_names_every_input_that_changes_the_clip():
    base = small_request()
    assert request_digest(base) == request_digest(small_request())
    for change in (dict(first_image=LAST), dict(last_image=FIRST), dict(width=176), dict(seed=10),
                   dict(prompt="pan left"), dict(watermark=True), dict(preset="veryfast"),
                   dict(template="mech1", last_image=None)):
        assert request_digest(small_request(**change)) != request_digest(base), change


# --- the clip cache -----------------------------------------------------------------------------
def test_the_cache_is_bounded_least_recently_used_first_and_survives_reopening(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in "abc":
        (clips / name).write_bytes(name.encode() * 400)
    cache = ClipCache(tmp_path / "cache", max_bytes=1000)
    digests = {name: name * 64 for name in "abc"}
    cache.store(digests["a"], clips / "a")
    cache.store(digests["b"], clips / "b")
    assert cache.place(digests["a"], tmp_path / "out" / "a.mp4")  # a is now the most recent
    cache.store(digests["c"], clips / "c")  # 1200 bytes > 1000: b goes
    assert (len(cache), cache.size) == (2, 800)
    assert not cache.place(digests["b"], tmp_path / "out" / "b.mp4")
    # A task's copy is its own file: evicting the entry does not take it away.
    assert (tmp_path / "out" / "a.mp4").read_bytes() == b"a" * 400
    (tmp_path / "cache" / ".x.mp4.123.part.mp4").write_bytes(b"half")  # a killed write
    again = ClipCache(tmp_path / "cache", max_bytes=1000)
    again.load()
    assert (len(again), again.size) == (2, 800)
    assert again.place(digests["c"], tmp_path / "out" / "c.mp4")
    assert not list((tmp_path / "cache").glob(".*"))


async def test_identical_requests_render_once_and_each_task_keeps_its_own_link(make_client,
                                                                             monkeypatch):
    renders = []
    real = rendering.render_in_worker

    def counting(request, out):
        renders.append(out)
        real(request, out)

    monkeypatch.setattr(rendering, "render_in_worker", counting)
    client = await make_client()
    body = seeded_body(77)
    ids = [(await create(client, body))[1]["output"]["task_id"] for _ in range(3)]
    other = (await create(client, seeded_body(78)))[1]["output"]["task_id"]
    client.emulator.clock.advance(60)
    await client.emulator.synthesizer.drain()
    assert len(renders) == 2  # seed 77 once, seed 78 once
    outputs = [(await query(client, t))["output"] for t in [*ids, other]]
    assert {o["task_status"] for o in outputs} == {"SUCCEEDED"}
    urls = [o["video_url"] for o in outputs]
    assert len(set(urls)) == 4  # every task its own result key and signature
    clips = []
    for url in urls:
        response = await client.get(url[url.index("/", len("http://")):])
        assert response.status == 200
        clips.append(await response.read())
    assert clips[0] == clips[1] == clips[2] != clips[3]
    # The tasks expire and their files go; the cache's entry stays and serves the next one.
    paths = [client.emulator.synthesizer.path_for("dashscope-result-bj",
                                                  client.emulator.store.get_task(t).video_key)
             for t in ids]
    client.emulator.clock.advance(TASK_TTL.total_seconds() + 60)
    await client.emulator.synthesizer.drain()
    assert not any(p.exists() for p in paths)
    late = (await create(client, body))[1]["output"]["task_id"]
    client.emulator.clock.advance(60)
    await client.emulator.synthesizer.drain()
    url = (await query(client, late))["output"]["video_url"]
    response = await client.get(url[url.index("/", len("http://")):])
    assert await response.read() == clips[0] and len(renders) == 2


async def test_the_cache_survives_a_restart_and_can_be_turned_off(make_client, monkeypatch,
                                                                  tmp_path):
    renders = []
    real = rendering.render_in_worker
    monkeypatch.setattr(rendering, "render_in_worker",
                        lambda request, out: (renders.append(out), real(request, out)))
    body = seeded_body(5)
    for run in range(2):  # the same data dir twice: the second run finds the clip
        client = await make_client(data_dir=tmp_path / "kept")
        (await create(client, body))
        client.emulator.clock.advance(60)
        await client.emulator.synthesizer.drain()
        await client.close()
    assert len(renders) == 1
    client = await make_client(clip_cache_mb=0)
    assert client.emulator.synthesizer.cache is None
    for _ in range(2):
        await create(client, body)
    client.emulator.clock.advance(60)
    await client.emulator.synthesizer.drain()
    assert len(renders) == 3


def test_render_flags_and_their_environment_variables(monkeypatch):
    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["serve", *argv]))
    assert (settings().render_preset, settings().clip_cache_mb) == ("veryfast", 1024)
    assert settings("--render-preset", "ultrafast", "--clip-cache-mb", "0").render_preset == \
        "ultrafast"
    monkeypatch.setenv("KF2V_MOCK_RENDER_PRESET", "medium")
    monkeypatch.setenv("KF2V_MOCK_CLIP_CACHE_MB", "64")
    assert (settings().render_preset, settings().clip_cache_mb) == ("medium", 64)
    monkeypatch.setenv("KF2V_MOCK_RENDER_PRESET", "lightspeed")
    with pytest.raises(StartupError, match="lightspeed"):  # one line, exit status 2 (cli.main)
        settings()
    monkeypatch.delenv("KF2V_MOCK_RENDER_PRESET")
    with pytest.raises(StartupError, match="must be 0 or more"):
        build_parser().parse_args(["serve", "--clip-cache-mb", "-1"])
