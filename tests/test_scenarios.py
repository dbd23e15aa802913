"""In-band scenarios: the ``X-Mock-Scenario`` header and the ``[mock:<name>]`` prompt directive,
for every catalogue entry and every named scenario, and the switch that turns them off."""

from __future__ import annotations

import aiohttp
import pytest

from mock_server.tasks.errors import CATALOGUE, default_name_for_code, example_message
from mock_server.traffic import scenarios
from tests.conftest import assert_error, auth, create, kf2v_body, query
from tests.test_faults import finish, journal, link_path, tasks


def directive_body(*names: str) -> dict:
    body = kf2v_body()
    body["input"]["prompt"] = "a cat turns into a dog " + " ".join(f"[mock:{n}]" for n in names)
    return body


@pytest.mark.parametrize("name", list(CATALOGUE))
async def test_every_catalogue_entry_through_the_header_and_the_prompt(client, name):
    spec = CATALOGUE[name]
    status, body = await create(client, **{"X-Mock-Scenario": f"error:{name}"})
    assert_error(status, body, spec.status, spec.code, example_message(name))
    status, body = await create(client, directive_body(f"error:{name}"))
    assert_error(status, body, spec.status, spec.code, example_message(name))
    assert await tasks(client) == []


@pytest.mark.parametrize("code", sorted({spec.code for spec in CATALOGUE.values()}))
async def test_every_code_through_error_code(client, code):
    name = default_name_for_code(code)
    status, body = await create(client, **{"X-Mock-Scenario": f"error:{code}"})
    assert_error(status, body, CATALOGUE[name].status, code, example_message(name))


def test_the_listing_covers_every_catalogue_entry_and_every_named_scenario():
    listed = {s["name"] for s in scenarios.listing()}
    assert {f"error:{n}" for n in CATALOGUE} <= listed
    assert set(scenarios.NAMED) <= listed
    for entry in scenarios.listing():
        assert entry["description"] and entry["applies_to"] in ("any", "create")


async def test_get_scenarios(client):
    body = await (await client.get("/_mock/scenarios")).json()
    assert body["enabled"] is True and body["header"] == "X-Mock-Scenario"
    assert body["prompt_directive"] == "[mock:<name>]"
    by_name = {s["name"]: s for s in body["scenarios"]}
    assert by_name["throttled"]["request"] == [{"error": {
        "code": "Throttling.RateQuota", "status": 429, "name": "throttling_rate",
        "message": "Requests rate limit exceeded, please try again later."}}]
    assert by_name["flaky-polling"]["applies_to"] == "create"


@pytest.mark.parametrize("name, error", [
    (name, spec.request[0][1]["name"]) for name, spec in scenarios.NAMED.items()
    if spec.request and spec.request[0][0] == "error"])
async def test_named_error_scenarios(client, name, error):
    spec = CATALOGUE[error]
    for status, body in (await create(client, **{"X-Mock-Scenario": name}),
                         await create(client, directive_body(name))):
        assert_error(status, body, spec.status, spec.code, spec.message)
    response = await client.get("/api/v1/tasks", headers=auth(**{"X-Mock-Scenario": name}))
    assert response.status == spec.status
    assert await tasks(client) == []


async def test_throttled_carries_retry_after(client):
    response = await client.get("/api/v1/tasks/x", headers=auth(**{"X-Mock-Scenario": "throttled"}))
    assert response.status == 429 and response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("name, at, entry", [
    ("fail-at-start", "start", "input_inspection_failed"),
    ("fail-at-end", "end", "output_inspection_failed"),
    ("fail-at-end:InternalError.Timeout", "end", "internal_timeout"),
    ("fail-at-start:ip_infringement", "start", "ip_infringement"),
])
async def test_fail_scenarios(client, name, at, entry):
    for created in (await create(client, **{"X-Mock-Scenario": name}),
                    await create(client, directive_body(name))):
        status, body = created
        assert status == 200
        task_id = body["output"]["task_id"]
        assert (await query(client, task_id))["output"]["task_status"] == "PENDING"
    client.emulator.clock.advance(1.0)
    states = {t["task_id"]: t for t in await tasks(client)}
    assert all(t["failure"]["at"] == at for t in states.values())
    await finish(client)
    for task_id in states:
        out = (await query(client, task_id))["output"]
        assert (out["task_status"], out["code"], out["message"]) == (
            "FAILED", CATALOGUE[entry].code, CATALOGUE[entry].message)


async def test_flaky_polling_answers_503_twice_then_the_task(client):
    _, created = await create(client, **{"X-Mock-Scenario": "flaky-polling"})
    task_id = created["output"]["task_id"]
    statuses = [(await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).status
                for _ in range(3)]
    assert statuses == [503, 503, 200]
    rule = (await (await client.get("/_mock/faults")).json())["faults"][0]
    assert rule["match"] == {"endpoint": "query", "task_id": task_id}
    assert rule["source"] == "scenario:flaky-polling" and rule["active"] is False
    # Other tasks are untouched.
    _, other = await create(client)
    assert (await client.get(f"/api/v1/tasks/{other['output']['task_id']}",
                             headers=auth())).status == 200


async def test_expire_url_scenario(client):
    _, created = await create(client, directive_body("expire-url"))
    await finish(client)
    url = (await query(client, created["output"]["task_id"]))["output"]["video_url"]
    expired = await client.get(link_path(url))
    assert expired.status == 403 and "Request has expired." in await expired.text()


async def test_slow_disconnect_and_truncate_scenarios(client):
    slept: list[float] = []

    async def record(seconds):
        slept.append(seconds)
    client.emulator.sleep = record
    assert (await client.get("/api/v1/tasks", headers=auth(**{"X-Mock-Scenario": "slow"}))).status == 200
    await client.get("/api/v1/tasks", headers=auth(**{"X-Mock-Scenario": "slow:250, slow"}))
    assert slept == [3.0, 3.25]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(client, **{"X-Mock-Scenario": "disconnect"})
    async with client.get("/api/v1/tasks", headers=auth(**{"X-Mock-Scenario": "truncate"})) as rsp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await rsp.read()
    assert await tasks(client) == []
    entries = await journal(client)
    assert [e["faults"] for e in entries] == [["scenario:slow"], ["scenario:slow:250", "scenario:slow"],
                                              ["scenario:disconnect"], ["scenario:truncate"]]


@pytest.mark.parametrize("name", ["nope", "error:NoSuchCode", "slow:soon", "fail-at-end:", "error"])
async def test_unknown_scenarios_are_a_400(client, name):
    status, body = await create(client, **{"X-Mock-Scenario": name})
    assert_error(status, body, 400, "InvalidParameter",
                 f"unknown mock scenario {name!r}: GET /_mock/scenarios lists them")
    status, body = await create(client, directive_body(name))
    assert status == 400


async def test_the_prompt_is_kept_as_sent(client):
    body = directive_body("slow:0")
    _, created = await create(client, body)
    await finish(client)
    out = (await query(client, created["output"]["task_id"]))["output"]
    assert out["orig_prompt"] == body["input"]["prompt"]


async def test_no_scenarios_ignores_header_and_directive(make_client):
    client = await make_client(scenarios=False)
    status, _ = await create(client, **{"X-Mock-Scenario": "internal-error"})
    assert status == 200
    status, _ = await create(client, directive_body("fail-at-start", "nope"))
    assert status == 200
    assert (await (await client.get("/_mock/scenarios")).json())["enabled"] is False
