"""What the chaos run needs from fault rules, usable by anyone: ``after`` (aim at the n-th matching
request, e.g. the third poll of a task), ``error.retry_after`` (the Retry-After a 429 says) and
``task_timing`` (a long PENDING or RUNNING), on a frozen clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import create, query
from tests.test_faults import add_fault, journal, tasks


async def test_after_lets_the_first_matching_requests_pass(client):
    status, body = await create(client)
    task_id = body["output"]["task_id"]
    rule = await add_fault(client, {"match": {"endpoint": "query", "task_id": task_id},
                                    "error": {"name": "model_unavailable"}, "after": 2,
                                    "times": 1})
    assert (rule["after"], rule["seen"]) == (2, 0)
    statuses = [(await client.get(f"/api/v1/tasks/{task_id}", headers={
        "Authorization": "Bearer sk-kf2v-mock-beijing"})).status for _ in range(5)]
    assert statuses == [200, 200, 503, 200, 200]  # the third poll, and only it
    listed = (await (await client.get("/_mock/faults")).json())["faults"][0]
    assert (listed["seen"], listed["applied"], listed["active"]) == (3, 1, False)
    # A request the rule does not match is not counted.
    await client.get("/api/v1/tasks/other", headers={"Authorization": "Bearer sk-kf2v-mock-beijing"})
    assert (await (await client.get("/_mock/faults")).json())["faults"][0]["seen"] == 3


async def test_a_rule_without_after_keeps_its_documented_shape(client):
    rule = await add_fault(client, {"disconnect": {}})
    assert "after" not in rule and "seen" not in rule


async def test_error_retry_after(client):
    await add_fault(client, {"match": {"endpoint": "create"},
                             "error": {"name": "throttling_rate", "retry_after": 7}, "times": 1})
    await add_fault(client, {"match": {"endpoint": "create"},
                             "error": {"name": "model_unavailable", "retry_after": 0}, "times": 1})
    response = await client.post("/api/v1/services/aigc/image2video/video-synthesis", json={},
                                  headers={"Authorization": "Bearer sk-kf2v-mock-beijing",
                                           "X-DashScope-Async": "enable"})
    assert (response.status, response.headers["Retry-After"]) == (429, "7")
    response = await client.post("/api/v1/services/aigc/image2video/video-synthesis", json={},
                                 headers={"Authorization": "Bearer sk-kf2v-mock-beijing",
                                          "X-DashScope-Async": "enable"})
    assert (response.status, response.headers["Retry-After"]) == (503, "0")
    (first, second) = await journal(client, endpoint="create")
    assert (first["retry_after"], second["retry_after"]) == (7, 0)


async def test_task_timing_makes_a_long_pending_and_running_task(client):
    await add_fault(client, {"task_timing": {"queue_wait": 120, "run_time": 600}, "times": 1})
    status, body = await create(client)
    task_id = body["output"]["task_id"]
    (task,) = await tasks(client)
    assert (task["queue_wait_seconds"], task["run_seconds"]) == (120, 600)
    client.emulator.clock.advance(119)
    assert (await query(client, task_id))["output"]["task_status"] == "PENDING"
    client.emulator.clock.advance(2)
    assert (await query(client, task_id))["output"]["task_status"] == "RUNNING"
    client.emulator.clock.advance(600)
    await client.emulator.synthesizer.drain()
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"
    # The next task is drawn as usual, with the same id it would have had anyway.
    status, second = await create(client)
    (_, other) = await tasks(client)
    assert other["queue_wait_seconds"] < 1 and other["run_seconds"] < 2


async def test_task_timing_alone_keeps_the_other_duration(client):
    await add_fault(client, {"task_timing": {"queue_wait": 30}})
    await create(client)
    (task,) = await tasks(client)
    stored = client.emulator.service.find(task["task_id"])  # with its derived start
    assert task["queue_wait_seconds"] == 30 and task["run_seconds"] < 2
    assert stored.scheduled_time == stored.submit_time + timedelta(seconds=30)


@pytest.mark.parametrize("body, words", [
    ({"task_timing": {}}, "queue_wait and/or run_time"),
    ({"task_timing": {"queue_wait": -1}}, "task_timing.queue_wait"),
    ({"task_timing": {"run_time": 10 ** 6}}, "task_timing.run_time"),
    ({"task_timing": {"later": 1}}, "unknown task_timing field"),
    ({"task_timing": {"run_time": 1}, "match": {"endpoint": "query"}}, "create endpoint only"),
    ({"error": {"name": "throttling_rate", "retry_after": "soon"}}, "retry_after"),
    ({"error": {"name": "throttling_rate", "retry_after": -1}}, "retry_after"),
    ({"disconnect": {}, "after": -1}, "after must be"),
    ({"disconnect": {}, "after": 1.5}, "after must be"),
])
async def test_bad_aims_are_refused(client, body, words):
    answer = await add_fault(client, body, status=400)
    assert answer["code"] == "InvalidParameter" and words in answer["message"], answer
