"""The durable store and what an emulator picks up again when it restarts on the same data dir
(in-process restarts here; tests/test_kill9.py kills a real process)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from mock_server.app import create_app
from mock_server.cli import build_parser, settings_from_args
from mock_server.config import Settings
from mock_server.emulator import Emulator
from mock_server.pipeline.keys import EMULATOR
from mock_server.store.memory import InMemoryStore
from mock_server.store.sqlite import DB_NAME, DataDirError, SqliteStore
from mock_server.tasks.clock import VirtualClock
from mock_server.tasks.models import Failure, Task, TaskSpec, Upload, UploadPolicy
from tests import contract_check
from tests.conftest import T0, auth, create, kf2v_body, query
from tests.conftest import test_settings as settings_for
from tests.test_uploads import FIRST, LAST, RESOLVE, get_policy, upload

SPEC = TaskSpec(model="wan2.2-kf2v-flash", first_frame_url="data:...", last_frame_url=None,
                prompt="一只猫", negative_prompt=None, template=None, resolution="480P",
                duration=5, prompt_extend=True, watermark=False, seed=None)


def a_task(task_id: str = "t-1", sequence: int = 1, **changes) -> Task:
    task = Task(task_id=task_id, request_id="r-1", region="cn-beijing", account_id="acct",
                api_key_id="key", spec=SPEC, seed=42, submit_time=T0, queue_wait=0.5,
                run_time=1.5, sequence=sequence, actual_prompt="一只猫, 细节", width=640,
                height=480, scheduled_time=T0 + timedelta(seconds=0.5),
                failure=Failure("InvalidParameter", "bad size", at="start"), video_key="1d/x.mp4")
    return replace(task, **changes)


# --- the store --------------------------------------------------------------------------------------
def test_every_record_survives_reopening_the_store(tmp_path):
    store = SqliteStore(tmp_path)
    task = a_task()
    store.add_task(task)
    task.video_ready = True
    task.canceled_time = T0 + timedelta(seconds=3)
    store.save_task(task)
    policy = UploadPolicy("dir/a", "acct", "cn-beijing", "wan2.2-kf2v-flash", T0, 100)
    upload_ = Upload("dir/a/f.png", "acct", "cn-beijing", "wan2.2-kf2v-flash", "/x/f.png", 3,
                     "image/png", T0)
    store.add_policy(policy)
    store.add_upload(upload_)
    store.put_meta("clock", "{}")
    assert [store.next_sequence() for _ in range(3)] == [1, 2, 3]
    store.close()

    store = SqliteStore(tmp_path)
    try:
        stored = replace(task, scheduled_time=None)  # derived by the scheduler, never stored
        assert store.tasks() == [stored] and store.get_task("t-1") == stored
        assert store.get_task("t-1").submit_time == T0  # an aware datetime again
        assert store.policies() == [policy] and store.get_upload("dir/a/f.png") == upload_
        assert store.get_meta("clock") == "{}"
        assert store.next_sequence() == 4
    finally:
        store.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request, tmp_path):
    store = InMemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    yield store
    store.close()


def test_fault_rules_replace_in_place_and_clear_keeps_meta(any_store):
    store = any_store
    for rule_id in ("a", "b", "c"):
        store.put_fault_rule({"id": rule_id, "times": 1})
    store.put_fault_rule({"id": "a", "times": 5})  # replaced, keeps its first position
    store.delete_fault_rule("b")
    store.delete_fault_rule("nope")
    assert store.fault_rules() == [{"id": "a", "times": 5}, {"id": "c", "times": 1}]
    store.add_task(a_task())
    store.put_meta("oss_signer", "s")
    store.next_sequence()
    store.clear()
    assert (store.fault_rules(), store.tasks(), store.next_sequence()) == ([], [], 1)
    assert store.get_meta("oss_signer") == "s"


def test_fault_rules_and_a_reset_survive_reopening(tmp_path):
    store = SqliteStore(tmp_path)
    store.put_fault_rule({"id": "x", "match": {"endpoint": "create"}, "action": {"error": "x"}})
    store.put_fault_rule({"id": "y", "probability": 0.5})
    store.put_fault_rule({"id": "x", "times": 2})
    store.close()
    store = SqliteStore(tmp_path)
    assert store.fault_rules() == [{"id": "x", "times": 2}, {"id": "y", "probability": 0.5}]
    store.add_task(a_task())
    store.clear()
    store.close()
    store = SqliteStore(tmp_path)
    try:
        assert (store.tasks(), store.fault_rules(), store.next_sequence()) == ([], [], 1)
    finally:
        store.close()


def test_one_process_per_data_dir_and_a_foreign_schema_is_refused(tmp_path):
    store = SqliteStore(tmp_path)
    with pytest.raises(DataDirError, match="in use"):
        SqliteStore(tmp_path)
    store.close()
    SqliteStore(tmp_path).close()  # the lock went with the first store

    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(DataDirError, match="schema 99"):
        SqliteStore(tmp_path)
    SqliteStore(tmp_path / "other").close()  # and the failed open released the lock
    with pytest.raises(DataDirError, match="schema 99"):
        SqliteStore(tmp_path)


def test_the_journal_is_wal_and_the_file_is_private(tmp_path):
    store = SqliteStore(tmp_path)
    try:
        reader = sqlite3.connect(tmp_path / DB_NAME)
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reader.close()
        assert (tmp_path / DB_NAME).stat().st_mode & 0o077 == 0
        store.add_task(a_task())
        store.checkpoint()  # off-loop housekeeping works alongside the writer
        store.save_task(a_task(video_ready=True))
    finally:
        store.close()


# --- the clock ---------------------------------------------------------------------------------------
def test_a_frozen_clock_resumes_exactly_a_running_one_by_the_real_time_elapsed():
    frozen = VirtualClock(T0, frozen=True)
    assert VirtualClock.resume(frozen.snapshot(wall=lambda: 1000.0),
                               wall=lambda: 5000.0).now() == T0
    running = VirtualClock(T0, monotonic=lambda: 0.0)
    snapshot = running.snapshot(wall=lambda: 1000.0)
    resumed = VirtualClock.resume(snapshot, wall=lambda: 1090.0, monotonic=lambda: 0.0)
    assert resumed.now() == T0 + timedelta(seconds=90) and not resumed.frozen
    # The host's clock went back meanwhile: resume where it stood, not earlier.
    assert VirtualClock.resume(snapshot, wall=lambda: 10.0, monotonic=lambda: 0.0).now() == T0
    # Never before something already recorded.
    later = T0 + timedelta(hours=1)
    assert VirtualClock.resume(snapshot, not_before=later, wall=lambda: 1000.0,
                               monotonic=lambda: 0.0).now() == later


# --- restarting an emulator ----------------------------------------------------------------------------
@pytest.fixture
def restartable(aiohttp_client, tmp_path):
    """``await start()`` an emulator app on ``tmp_path/data``; again after closing = a restart."""
    async def start(**overrides):
        client = await aiohttp_client(
            contract_check.install(create_app(settings_for(tmp_path, **overrides))))
        client.emulator = client.app[EMULATOR]
        return client
    return start


async def test_tasks_uploads_clock_and_links_survive_a_restart(restartable):
    client = await restartable()
    client.emulator.clock.advance(30)
    grant = await get_policy(client)
    assert (await upload(client, grant, "first.png", FIRST)).status == 200
    status, body = await create(client)
    task_id = body["output"]["task_id"]
    client.emulator.clock.advance(10)
    await client.emulator.synthesizer.drain()
    done = await query(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    grant2 = await get_policy(client)  # a policy handed out, not used before the restart
    now = client.emulator.clock.now()
    await client.close()

    client = await restartable()
    assert client.emulator.store.durable
    assert client.emulator.clock.now() == now and client.emulator.clock.frozen
    again = await query(client, task_id)
    assert again["usage"] == done["usage"]
    # The same answer, bar the listener's address in the link (the test server's port is new).
    assert {**again["output"], "video_url": None} == {**done["output"], "video_url": None}
    # The link handed out before the restart still verifies and serves the clip.
    link = done["output"]["video_url"]
    response = await client.get(link[link.index("/", len("http://")):])
    assert response.status == 200 and len(await response.read()) > 1000
    # The upload is still usable by oss:// key, and the old policy still accepts an upload.
    key = f"oss://{grant['upload_dir']}/first.png"
    status, body = await create(client, kf2v_body(first_frame_url=key, last_frame_url=key),
                                **RESOLVE)
    assert status == 200, body
    assert (await upload(client, grant2, "last.png", LAST)).status == 200


async def test_unfinished_clips_are_rendered_again_and_tasks_without_frames_fail(restartable):
    client = await restartable()
    emulator = client.emulator
    status, body = await create(client)
    kept = body["output"]["task_id"]
    await emulator.synthesizer.drain()
    # As if killed before the clip was recorded: the task not ready, its frames still kept.
    task = emulator.store.get_task(kept)
    emulator.store.save_task(replace(task, video_ready=False, inputs="kept-frames"))
    clip = emulator.synthesizer.path_for("dashscope-result-bj", task.video_key)
    clip.unlink()
    inputs = emulator.inputs_dir
    (inputs / "kept-frames").mkdir(parents=True)
    (inputs / "kept-frames" / "first").write_bytes(FIRST)
    (inputs / "kept-frames" / "last").write_bytes(LAST)
    # A task whose frames are gone (deleted by hand): its clip can never be made.
    status, body = await create(client)
    lost = body["output"]["task_id"]
    await emulator.synthesizer.drain()
    task = emulator.store.get_task(lost)
    emulator.store.save_task(replace(task, video_ready=False, inputs="deleted"))
    # Frames no task needs (a create whose row was never written), and half-written files.
    (inputs / "orphan").mkdir()
    (inputs / "orphan" / "first").write_bytes(FIRST)
    partial = [clip.parent / f".{clip.name}.abc123.part.mp4",
               emulator.data_dir / "oss" / "uploads" / "d" / ".upload-k2j4_x9a",
               inputs / ".other.xyz.part" / "first"]
    for path in partial:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    legit_upload = emulator.data_dir / "oss" / "uploads" / "d" / ".upload.png"
    legit_upload.write_bytes(b"an upload key may start with a dot")
    await client.close()

    client = await restartable()
    emulator = client.emulator
    assert not any(p.exists() for p in partial) and not (inputs / ".other.xyz.part").exists()
    assert legit_upload.exists()
    await emulator.synthesizer.drain()
    assert not (inputs / "orphan").exists()
    emulator.clock.advance(10)
    await emulator.synthesizer.drain()
    assert (await query(client, kept))["output"]["task_status"] == "SUCCEEDED"
    assert clip.stat().st_size > 1000
    assert not (inputs / "kept-frames").exists()
    failed = (await query(client, lost))["output"]
    assert (failed["task_status"], failed["code"]) == ("FAILED", "InternalError.Algo")


async def test_start_times_are_derived_not_stored_and_a_restart_gives_the_same(restartable):
    client = await restartable()
    created = [(await create(client))[1]["output"]["task_id"] for _ in range(5)]
    status, _ = await create(client, kf2v_body(model="wanx2.1-kf2v-plus", resolution="720P"))
    assert status == 200
    response = await client.post(f"/api/v1/tasks/{created[1]}/cancel", headers=auth())
    assert response.status == 200
    before = {t: client.emulator.service.find(t).scheduled_time for t in created}
    assert before[created[1]] is None and all(before[t] for t in created if t != created[1])
    row = client.emulator.store.get_task(created[0])
    assert row.scheduled_time is None  # the store holds facts only
    await client.close()
    client = await restartable()
    assert {t: client.emulator.service.find(t).scheduled_time for t in created} == before


async def test_in_memory_keeps_nothing_and_no_data_dir_means_ephemeral(restartable, tmp_path):
    client = await restartable(in_memory=True)
    assert not client.emulator.store.durable
    status, body = await create(client)
    task_id = body["output"]["task_id"]
    await client.close()
    assert not (tmp_path / "data" / DB_NAME).exists()
    client = await restartable(in_memory=True)
    assert (await query(client, task_id))["output"]["task_status"] == "UNKNOWN"

    emulator = Emulator(Settings(log_requests=False))
    assert not emulator.store.durable
    await emulator.close()
    assert not emulator.data_dir.exists()


def test_command_line_in_memory_flag(monkeypatch):
    args = build_parser().parse_args(["serve", "--data-dir", "/tmp/x", "--in-memory"])
    assert settings_from_args(args).in_memory is True
    assert settings_from_args(build_parser().parse_args(["serve"])).in_memory is False
    monkeypatch.setenv("KF2V_MOCK_IN_MEMORY", "1")
    assert settings_from_args(build_parser().parse_args(["serve"])).in_memory is True
