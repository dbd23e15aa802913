"""Fault rules over HTTP on a frozen clock: every catalogue error on demand, task failures, delays,
dropped and truncated answers, expired result links, matching, seeded probability, ``times``, and
the admin API around them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from mock_server.store.memory import InMemoryStore
from mock_server.tasks.errors import CATALOGUE, default_name_for_code, example_message
from tests.conftest import BJ_KEY, SG_HOST, SG_KEY, assert_error, auth, create, kf2v_body, query


async def add_fault(client, body: dict, status: int = 200) -> dict:
    response = await client.post("/_mock/faults", json=body)
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def tasks(client) -> list[dict]:
    return (await (await client.get("/_mock/tasks")).json())["tasks"]


async def journal(client, **filters: str) -> list[dict]:
    response = await client.get("/_mock/requests", params=filters)
    return (await response.json())["requests"]


def link_path(url: str) -> str:
    """The path and query of a result link, for the test client (which adds its own origin)."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def finish(client, seconds: float = 30) -> None:
    client.emulator.clock.advance(seconds)
    await client.emulator.synthesizer.drain()


# --- every catalogue entry, exactly ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CATALOGUE))
async def test_every_catalogue_entry_through_a_rule_creates_nothing(client, name):
    spec = CATALOGUE[name]
    rule = await add_fault(client, {"match": {"endpoint": "create"}, "error": {"name": name}})
    assert rule["error"] == {"code": spec.code, "status": spec.status,
                             "message": example_message(name), "name": name}
    response = await client.post("/api/v1/services/aigc/image2video/video-synthesis",
                                 json=kf2v_body(), headers={"Authorization": f"Bearer {BJ_KEY}",
                                                            "X-DashScope-Async": "enable"})
    body = await response.json()
    assert_error(response.status, body, spec.status, spec.code, example_message(name))
    assert (response.headers.get("Retry-After") == "1") == (spec.status == 429)
    assert await tasks(client) == []


@pytest.mark.parametrize("code", sorted({spec.code for spec in CATALOGUE.values()}))
async def test_a_bare_code_means_its_default_entry(client, code):
    name = default_name_for_code(code)
    await add_fault(client, {"error": {"code": code}})
    status, body = await create(client)
    assert_error(status, body, CATALOGUE[name].status, code, example_message(name))


async def test_error_overrides_and_codes_outside_the_catalogue(client):
    await add_fault(client, {"error": {"code": "InvalidParameter", "message": "The size is "
                                       "not match 1x1"}, "times": 1})
    await add_fault(client, {"error": {"code": "Throttling.Custom", "status": 429,
                                       "message": "slow down"}, "times": 1})
    await add_fault(client, {"error": {"name": "internal_error", "status": 502}, "times": 1})
    status, body = await create(client)
    assert_error(status, body, 400, "InvalidParameter", "The size is not match 1x1")
    status, body = await create(client)
    assert_error(status, body, 429, "Throttling.Custom", "slow down")
    status, body = await create(client)
    assert_error(status, body, 502, "InternalError", CATALOGUE["internal_error"].message)
    status, _ = await create(client)
    assert status == 200


# --- the admin API --------------------------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ({}, "exactly one action"),
    ({"error": {"code": "InvalidParameter"}, "delay": {"ms": 1}}, "exactly one action"),
    ({"error": {"code": "NoSuchCode"}}, "not in the catalogue"),
    ({"error": {"name": "no_such_name"}}, "not a catalogue name"),
    ({"error": {"name": "internal_error", "code": "InvalidParameter"}}, "does not match"),
    ({"error": {"code": "InternalError", "status": 200}}, "400-599"),
    ({"error": {}}, "needs a code"),
    ({"task_failure": {"code": "InternalError", "at": "middle"}}, '"start" or "end"'),
    ({"task_failure": {"code": "InternalError"}, "match": {"endpoint": "query"}},
     "create endpoint only"),
    ({"expire_url": {}, "match": {"endpoint": "create"}}, "query endpoint only"),
    ({"delay": {"ms": -1}}, "delay.ms"),
    ({"delay": {"uniform": [5, 1]}}, "delay.uniform"),
    ({"delay": {"lognormal": {"mu": 1}}}, "delay.lognormal"),
    ({"delay": {}}, "exactly one of"),
    ({"truncate": {"bytes": -3}}, "truncate.bytes"),
    ({"disconnect": {"now": True}}, "unknown disconnect field"),
    ({"disconnect": {}, "probability": 1.5}, "probability"),
    ({"disconnect": {}, "probability": True}, "probability"),
    ({"disconnect": {}, "times": 0}, "times"),
    ({"disconnect": {}, "match": {"endpoint": "poll"}}, "match.endpoint"),
    ({"disconnect": {}, "match": {"region": "us-east-1"}}, "match.region"),
    ({"disconnect": {}, "match": {"prompt_regex": "("}}, "prompt_regex"),
    ({"disconnect": {}, "match": {"colour": "red"}}, "unknown match field"),
    ({"disconnect": {}, "extra": 1}, "unknown rule field"),
    ([1, 2], "JSON object"),
])
async def test_bad_rules_are_refused_with_a_clear_message(client, body, words):
    answer = await add_fault(client, body, status=400)
    assert set(answer) == {"request_id", "code", "message"}
    assert answer["code"] == "InvalidParameter" and words in answer["message"], answer
    assert (await (await client.get("/_mock/faults")).json()) == {"faults": []}


async def test_list_delete_one_delete_all(client):
    first = await add_fault(client, {"disconnect": {}, "match": {"endpoint": "list"}})
    second = await add_fault(client, {"delay": {"ms": 5}})
    assert (first["id"], second["id"]) == ("f1", "f2")
    assert first == {"id": "f1", "match": {"endpoint": "list"}, "disconnect": {},
                     "probability": 1, "times": None, "applied": 0, "remaining": None,
                     "draws": 0, "active": True, "source": "api"}
    listed = (await (await client.get("/_mock/faults")).json())["faults"]
    assert [r["id"] for r in listed] == ["f1", "f2"]
    gone = await client.delete("/_mock/faults/f1")
    assert gone.status == 200 and (await gone.json())["id"] == "f1"
    missing = await client.delete("/_mock/faults/f1")
    assert_error(missing.status, await missing.json(), 404, "NotFound",
                 "no fault rule with id 'f1'")
    assert (await (await client.delete("/_mock/faults")).json()) == {"faults": []}
    assert (await (await client.get("/_mock/faults")).json()) == {"faults": []}


async def test_a_rule_with_a_given_id_replaces_the_old_one_in_place(client):
    await add_fault(client, {"id": "poll", "error": {"name": "internal_error"}})
    await add_fault(client, {"delay": {"ms": 1}})
    await add_fault(client, {"id": "poll", "error": {"name": "model_unavailable"}})
    listed = (await (await client.get("/_mock/faults")).json())["faults"]
    assert [(r["id"], r.get("error", {}).get("code")) for r in listed] == [
        ("poll", "ModelUnavailable"), ("f1", None)]


async def test_reset_clears_rules_journal_and_rule_ids(client):
    await add_fault(client, {"error": {"name": "internal_error"}})
    await create(client)
    assert await journal(client)
    await client.post("/_mock/reset")
    assert (await (await client.get("/_mock/faults")).json()) == {"faults": []}
    assert await journal(client) == []
    assert (await add_fault(client, {"delay": {"ms": 0}}))["id"] == "f1"


def test_in_memory_store_keeps_rules_in_first_insertion_order():
    store = InMemoryStore()
    store.put_fault_rule({"id": "a", "n": 1})
    store.put_fault_rule({"id": "b", "n": 2})
    store.put_fault_rule({"id": "a", "n": 3})
    assert store.fault_rules() == [{"id": "a", "n": 3}, {"id": "b", "n": 2}]
    store.delete_fault_rule("a")
    store.delete_fault_rule("missing")
    assert store.fault_rules() == [{"id": "b", "n": 2}]
    store.clear()
    assert store.fault_rules() == []


# --- matching ----------------------------------------------------------------------------------------
async def test_match_endpoint_model_prompt_key_and_region(make_client):
    client = await make_client()
    await add_fault(client, {"match": {"model": "wanx2.1-kf2v-plus"},
                             "error": {"name": "model_unavailable"}})
    await add_fault(client, {"match": {"prompt_regex": "(?i)forbidden"},
                             "error": {"name": "data_inspection_failed"}})
    await add_fault(client, {"match": {"region": "ap-southeast-1", "endpoint": ["query", "list"]},
                             "error": {"name": "internal_error"}})
    status, _ = await create(client)
    assert status == 200
    status, body = await create(client, kf2v_body(model="wanx2.1-kf2v-plus", resolution="720P"))
    assert (status, body["code"]) == (503, "ModelUnavailable")
    body = kf2v_body()
    body["input"]["prompt"] = "a FORBIDDEN scene"
    status, answer = await create(client, body)
    assert (status, answer["code"]) == (400, "DataInspectionFailed")
    assert (await client.get("/api/v1/tasks/x", headers=auth())).status == 200
    sg = await client.get("/api/v1/tasks", headers=auth(SG_KEY, Host=SG_HOST))
    assert sg.status == 500

    await client.delete("/_mock/faults")
    await add_fault(client, {"match": {"api_key": SG_KEY}, "error": {"name": "arrearage"}})
    assert (await client.get("/api/v1/tasks", headers=auth())).status == 200
    sg = await client.get("/api/v1/tasks", headers=auth(SG_KEY, Host=SG_HOST))
    assert (await sg.json())["code"] == "Arrearage"


async def test_match_task_id_on_query_cancel_and_download(client):
    _, first = await create(client)
    _, second = await create(client)
    task_id = first["output"]["task_id"]
    await add_fault(client, {"match": {"task_id": task_id}, "error": {"name": "internal_error"}})
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).status == 500
    assert (await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())).status == 500
    other = second["output"]["task_id"]
    assert (await query(client, other))["output"]["task_status"] == "PENDING"
    await client.delete("/_mock/faults")
    await finish(client)
    url = (await query(client, task_id))["output"]["video_url"]
    await add_fault(client, {"match": {"task_id": task_id, "endpoint": "download"},
                             "error": {"name": "internal_error"}})
    assert (await client.get(link_path(url))).status == 500


async def test_a_query_rule_matches_the_tasks_model_and_prompt(client):
    body = kf2v_body()
    body["input"]["prompt"] = "storm over the sea"
    _, created = await create(client, body)
    _, plain = await create(client)
    await add_fault(client, {"match": {"prompt_regex": "storm", "endpoint": "query"},
                             "error": {"name": "model_unavailable"}})
    assert (await client.get(f"/api/v1/tasks/{created['output']['task_id']}",
                             headers=auth())).status == 503
    assert (await client.get(f"/api/v1/tasks/{plain['output']['task_id']}",
                             headers=auth())).status == 200


# --- times and probability -------------------------------------------------------------------------
async def test_times_retires_the_rule_after_n_applications(client):
    await add_fault(client, {"match": {"endpoint": "list"}, "error": {"name": "internal_error"},
                             "times": 2})
    statuses = [(await client.get("/api/v1/tasks", headers=auth())).status for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    rule = (await (await client.get("/_mock/faults")).json())["faults"][0]
    assert (rule["applied"], rule["remaining"], rule["active"]) == (2, 0, False)


async def _draw_sequence(make_client, seed: int, n: int = 40) -> list[int]:
    client = await make_client(seed=seed)
    await add_fault(client, {"match": {"endpoint": "list"}, "error": {"name": "internal_error"},
                             "probability": 0.3})
    statuses = [(await client.get("/api/v1/tasks", headers=auth())).status for _ in range(n)]
    rule = (await (await client.get("/_mock/faults")).json())["faults"][0]
    assert rule["draws"] == n and rule["applied"] == statuses.count(500)
    return statuses


async def test_seeded_probability_gives_the_same_sequence_every_run(make_client):
    first = await _draw_sequence(make_client, seed=7)
    again = await _draw_sequence(make_client, seed=7)
    other = await _draw_sequence(make_client, seed=8)
    assert first == again
    assert first != other
    assert 4 <= first.count(500) <= 20  # about 30 % of 40


async def test_probability_zero_never_fires_and_one_always_does(client):
    await add_fault(client, {"match": {"endpoint": "list"}, "error": {"name": "internal_error"},
                             "probability": 0})
    assert {(await client.get("/api/v1/tasks", headers=auth())).status for _ in range(5)} == {200}


# --- task failures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("at", ["start", "end"])
async def test_task_failure_accepts_then_fails_without_usage(client, at):
    await add_fault(client, {"task_failure": {"code": "DataInspectionFailed", "at": at},
                             "times": 1})
    status, created = await create(client)
    assert status == 200 and created["output"]["task_status"] == "PENDING"
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(1.0)  # started (queue wait 0.5-0.9 s), not yet at its end
    body = await query(client, task_id)
    assert body["output"]["task_status"] == ("FAILED" if at == "start" else "RUNNING")
    await finish(client)
    body = await query(client, task_id)
    out = body["output"]
    assert (out["task_status"], out["code"], out["message"]) == (
        "FAILED", "DataInspectionFailed", CATALOGUE["data_inspection_failed"].message)
    assert "usage" not in body and "video_url" not in out
    # times: 1 -> the next task succeeds.
    _, ok = await create(client)
    await finish(client)
    assert (await query(client, ok["output"]["task_id"]))["output"]["task_status"] == "SUCCEEDED"


async def test_task_failure_is_not_used_up_by_a_rejected_create(client):
    await add_fault(client, {"task_failure": {"name": "internal_algo", "message": "boom"},
                             "times": 1})
    status, _ = await create(client, kf2v_body(resolution="4K"))
    assert status == 400
    _, created = await create(client)
    await finish(client)
    out = (await query(client, created["output"]["task_id"]))["output"]
    assert (out["task_status"], out["code"], out["message"]) == (
        "FAILED", "InternalError.Algo", "boom")


async def test_task_failure_matches_model_and_prompt(client):
    await add_fault(client, {"match": {"model": "wanx2.1-kf2v-plus"},
                             "task_failure": {"code": "InternalError.Timeout"}})
    _, flash = await create(client)
    _, plus = await create(client, kf2v_body(model="wanx2.1-kf2v-plus", resolution="720P"))
    await finish(client)
    assert (await query(client, flash["output"]["task_id"]))["output"]["task_status"] == "SUCCEEDED"
    assert (await query(client, plus["output"]["task_id"]))["output"]["code"] == (
        "InternalError.Timeout")


# --- delays, dropped and truncated answers, expired links ------------------------------------------
@pytest.fixture
def slept(client):
    """Replace the emulator's sleep with a recorder: delays are asserted, not waited for."""
    calls: list[float] = []

    async def record(seconds: float) -> None:
        calls.append(seconds)
    client.emulator.sleep = record
    return calls


async def test_fixed_uniform_and_lognormal_delays(client, slept):
    await add_fault(client, {"match": {"endpoint": "list"}, "delay": {"ms": 1500}, "times": 1})
    await add_fault(client, {"match": {"endpoint": "list"}, "delay": {"uniform": [100, 200]},
                             "times": 3})
    await add_fault(client, {"match": {"endpoint": "query"},
                             "delay": {"lognormal": {"mu": 5.0, "sigma": 0.5}}, "times": 20})
    for _ in range(3):
        assert (await client.get("/api/v1/tasks", headers=auth())).status == 200
    assert 1.6 <= slept[0] <= 1.7 and all(0.1 <= s <= 0.2 for s in slept[1:])
    slept.clear()
    for _ in range(20):
        await query(client, "nope")
    assert len(slept) == 20 and len(set(slept)) == 20
    median = sorted(slept)[10]
    assert 0.05 < median < 0.4  # e^5 ms = 148 ms


async def test_a_real_delay_shows_in_the_journal_latency(client):
    await add_fault(client, {"match": {"endpoint": "list"}, "delay": {"ms": 60}})
    assert (await client.get("/api/v1/tasks", headers=auth())).status == 200
    entry = (await journal(client, endpoint="list"))[0]
    assert entry["latency_ms"] >= 60 and entry["faults"] == ["f1"]


async def test_disconnect_closes_without_an_answer(client):
    await add_fault(client, {"match": {"endpoint": "create"}, "disconnect": {}, "times": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(client)
    assert await tasks(client) == []
    entry = (await journal(client))[0]
    assert (entry["endpoint"], entry["status"], entry["faults"]) == ("create", None, ["f1"])
    status, _ = await create(client)
    assert status == 200


async def test_truncate_sends_part_of_the_body_then_closes(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    await finish(client)
    await add_fault(client, {"match": {"endpoint": "query"}, "truncate": {"bytes": 10},
                             "times": 1})
    async with client.get(f"/api/v1/tasks/{task_id}", headers=auth()) as response:
        assert response.status == 200 and response.content_type == "application/json"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    url = (await query(client, task_id))["output"]["video_url"]
    path = link_path(url)
    full = await (await client.get(path)).read()
    await add_fault(client, {"match": {"endpoint": "download"}, "truncate": {}})
    async with client.get(path) as response:
        assert int(response.headers["Content-Length"]) == len(full)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_expire_url_serves_an_already_expired_link(client):
    await add_fault(client, {"expire_url": {}, "times": 1})
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(1.0)
    assert "video_url" not in (await query(client, task_id))["output"]
    await finish(client)
    url = (await query(client, task_id))["output"]["video_url"]
    path = link_path(url)
    expired = await client.get(path)
    text = await expired.text()
    assert expired.status == 403 and expired.headers["x-oss-ec"] == "0002-00000069"
    assert "<Code>AccessDenied</Code>" in text and "<Message>Request has expired.</Message>" in text
    entry = (await journal(client, endpoint="download"))[0]
    assert (entry["status"], entry["code"], entry["task_id"]) == (403, "AccessDenied", task_id)
    # times: 1 -> the next answer carries a good link.
    url = (await query(client, task_id))["output"]["video_url"]
    assert (await client.get(link_path(url))).status == 200


async def test_terminal_actions_take_the_first_rule_that_fires_delays_add_up(client, slept):
    await add_fault(client, {"delay": {"ms": 100}})
    await add_fault(client, {"error": {"name": "internal_error"}})
    await add_fault(client, {"delay": {"ms": 200}})
    await add_fault(client, {"disconnect": {}})
    response = await client.get("/api/v1/tasks", headers=auth())
    assert response.status == 500
    assert slept == [pytest.approx(0.3)]
    rules = (await (await client.get("/_mock/faults")).json())["faults"]
    assert [r["applied"] for r in rules] == [1, 1, 1, 0]


async def test_faults_never_touch_the_admin_api(client):
    await add_fault(client, {"disconnect": {}})
    assert (await client.get("/_mock/health")).status == 200
    assert await journal(client) == []


async def test_rules_delay_concurrent_requests_independently(client):
    await add_fault(client, {"match": {"endpoint": "list"}, "delay": {"ms": 50}})
    statuses = await asyncio.gather(*(client.get("/api/v1/tasks", headers=auth())
                                      for _ in range(5)))
    assert {s.status for s in statuses} == {200}
