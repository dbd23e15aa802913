"""Task and request ids: random like the real service's by default (never repeating across resets
or restarts, real-recordings.md difference 2), reproducible only with an explicit seed; clips stay
byte-identical for the same inputs and seed."""

from __future__ import annotations

import json
import urllib.request

from mock_server.testing.serve_process import ServeProcess
from tests.conftest import CREATE, auth, create, create_headers, kf2v_body

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _create_over_http(server: ServeProcess) -> dict:
    request = urllib.request.Request(
        server.urls["cn-beijing"] + CREATE.removeprefix("/api/v1"),
        data=json.dumps(kf2v_body()).encode(), headers=create_headers(), method="POST")
    with OPENER.open(request, timeout=30) as response:
        return json.loads(response.read())


def test_fresh_emulators_hand_out_different_ids_unless_given_the_same_seed(tmp_path):
    servers = [ServeProcess(*flags, workdir=tmp_path / str(n))
               for n, flags in enumerate([(), (), ("--seed", "5"), ("--seed", "5")])]
    try:
        for server in servers:
            server.start()
        first = [_create_over_http(server) for server in servers]
    finally:
        for server in servers:
            server.stop()
            server.cleanup()
    task_ids = [answer["output"]["task_id"] for answer in first]
    request_ids = [answer["request_id"] for answer in first]
    assert task_ids[0] != task_ids[1] and request_ids[0] != request_ids[1]  # no seed: random
    assert task_ids[2] == task_ids[3] and request_ids[2] == request_ids[3]  # same seed: same
    assert task_ids[2] not in task_ids[:2]


async def test_without_a_seed_ids_never_repeat_across_resets_and_restarts(make_client, tmp_path):
    data_dir = tmp_path / "kept"
    client = await make_client(seed=None, data_dir=data_dir)
    seen = set()
    for _ in range(3):
        status, body = await create(client)
        assert status == 200
        seen.add(body["output"]["task_id"])
        assert (await client.post("/_mock/reset")).status == 200
    await client.close()
    again = await make_client(seed=None, data_dir=data_dir)  # a restart on the same data dir
    status, body = await create(again)
    assert body["output"]["task_id"] not in seen and len(seen) == 3


async def test_with_a_seed_a_reset_gives_the_same_ids_and_timelines_again(make_client):
    client = await make_client(seed=11)

    async def first_task() -> tuple[str, dict]:
        status, body = await create(client)
        assert status == 200
        task_id = body["output"]["task_id"]
        timeline = next(t for t in (await (await client.get("/_mock/tasks")).json())["tasks"]
                        if t["task_id"] == task_id)
        return task_id, {k: timeline[k] for k in ("queue_wait_seconds", "run_seconds", "seed")}

    before = await first_task()
    await client.post("/_mock/reset")
    assert await first_task() == before


async def test_a_seeded_restart_does_not_reuse_the_request_ids_of_the_run_before(make_client, tmp_path):
    data_dir = tmp_path / "kept"
    client = await make_client(seed=4, data_dir=data_dir)
    seen = {(await client.get("/api/v1/tasks/x", headers=auth())).headers["X-Request-Id"]
            for _ in range(3)}
    await client.close()
    again = await make_client(seed=4, data_dir=data_dir)
    later = (await again.get("/api/v1/tasks/x", headers=auth())).headers["X-Request-Id"]
    assert later not in seen  # upload dirs are named after getPolicy's request id


async def test_clips_are_byte_identical_for_the_same_inputs_and_seed(make_client):
    """Without a server seed, a create that names its own seed still renders the same bytes."""
    clips = []
    for _ in range(2):
        client = await make_client(seed=None)
        body = kf2v_body()
        body["parameters"]["seed"] = 1234
        status, created = await create(client, body)
        assert status == 200
        task_id = created["output"]["task_id"]
        await client.emulator.synthesizer.drain()
        await client.post("/_mock/clock", json={"advance_seconds": 60})
        answer = await (await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).json()
        assert answer["output"]["task_status"] == "SUCCEEDED"
        link = answer["output"]["video_url"]
        clips.append(await (await client.get(link[link.index("/", len("http://")):])).read())
    assert clips[0] == clips[1] and clips[0][4:8] == b"ftyp"
