"""Accounts and regions cannot see each other's tasks: a foreign task id answers exactly like an
unknown one (query and cancel), the list never shows it whatever the filters, and its result link
is never handed out. Keys of one account (REGION=KEY@ACCOUNT) share the account's tasks in that
region only. Signed links cannot be forged or extended."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from mock_server.tasks.accounts import KeySpec
from tests.conftest import SG_HOST, auth, create, create_headers, kf2v_body, query
from tests.test_oss_links import oss_error, succeeded_task

KEYS = ["cn-beijing=sk-alice@team", "cn-beijing=sk-alice2@team", "cn-beijing=sk-bob",
        "ap-southeast-1=sk-sg-alice@team", "ap-southeast-1=sk-sg-bob"]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def shared(make_client):
    return await make_client(api_keys=[KeySpec.parse(k) for k in KEYS])


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


async def answer(client, method: str, path: str, key: str, **headers) -> tuple[int, dict]:
    response = await client.request(method, path, headers=auth(key, **headers))
    return response.status, await response.json()


async def foreign_equals_unknown(client, task_id: str, key: str, **headers) -> None:
    """Query and cancel of ``task_id`` with ``key`` answer exactly as for an id nobody has."""
    for method, template in (("GET", "/api/v1/tasks/{}"), ("POST", "/api/v1/tasks/{}/cancel")):
        status, foreign = await answer(client, method, template.format(task_id), key, **headers)
        unknown_status, unknown = await answer(client, method, template.format(UNKNOWN_ID), key,
                                               **headers)
        assert status == unknown_status
        foreign, unknown = without_request_id(foreign), without_request_id(unknown)
        if "output" in unknown:
            unknown["output"]["task_id"] = task_id  # the only difference: the id asked for
        assert foreign == unknown, (method, foreign)


async def listed_ids(client, key: str, query_string: str = "", **headers) -> list[str]:
    status, body = await answer(client, "GET", f"/api/v1/tasks{query_string}", key, **headers)
    assert status == 200, body
    return [item["task_id"] for item in body["data"]]


async def test_another_account_cannot_query_cancel_or_list_in_any_state(shared):
    _, created = await create(shared, key="sk-alice")
    task_id = created["output"]["task_id"]
    task = shared.emulator.store.get_task(task_id)
    states = []
    for seconds in (0, task.queue_wait + 0.05, 60):  # PENDING, RUNNING, SUCCEEDED
        shared.emulator.clock.advance(seconds - (shared.emulator.clock.now() - task.submit_time)
                                      .total_seconds())
        await shared.emulator.synthesizer.drain()
        states.append((await query(shared, task_id, "sk-alice"))["output"]["task_status"])
        await foreign_equals_unknown(shared, task_id, "sk-bob")
        filters = ["", f"?task_id={task_id}", f"?api_key_id={task.api_key_id}",
                   f"?status={states[-1]}", "?model_name=wan2.2-kf2v-flash",
                   "?region=cn-beijing&page_size=100"]
        for query_string in filters:
            assert await listed_ids(shared, "sk-bob", query_string) == []
            assert task_id in await listed_ids(shared, "sk-alice", query_string)
    assert states == ["PENDING", "RUNNING", "SUCCEEDED"]
    # The owner's answer carries the result link; nobody else ever gets it.
    owner = await query(shared, task_id, "sk-alice")
    assert owner["output"]["video_url"].startswith("http")
    status, body = await answer(shared, "GET", "/api/v1/tasks", "sk-bob")
    assert "video_url" not in str(body) and task_id not in str(body)


async def test_a_foreign_pending_task_is_not_canceled(shared):
    _, created = await create(shared, key="sk-alice")
    task_id = created["output"]["task_id"]
    response = await shared.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth("sk-bob"))
    assert response.status == 400
    assert (await query(shared, task_id, "sk-alice"))["output"]["task_status"] == "PENDING"


async def test_keys_of_one_account_share_its_tasks(shared):
    _, created = await create(shared, key="sk-alice")
    task_id = created["output"]["task_id"]
    assert (await query(shared, task_id, "sk-alice2"))["output"]["task_status"] == "PENDING"
    assert await listed_ids(shared, "sk-alice2") == [task_id]
    response = await shared.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth("sk-alice2"))
    assert response.status == 200
    assert (await query(shared, task_id, "sk-alice"))["output"]["task_status"] == "CANCELED"


async def test_regions_are_isolated_even_for_one_account_name(shared):
    # sk-sg-alice@team is "team" in Singapore: another account than Beijing's "team".
    _, created = await create(shared, key="sk-alice")
    task_id = created["output"]["task_id"]
    sg = {"Host": SG_HOST}
    for key in ("sk-sg-alice", "sk-sg-bob"):
        await foreign_equals_unknown(shared, task_id, key, **sg)
        assert await listed_ids(shared, key, f"?task_id={task_id}", **sg) == []
        assert await listed_ids(shared, key, "?region=cn-beijing", **sg) == []
    # And the other way round.
    body = kf2v_body("wan2.1-kf2v-plus", "720P")
    status, sg_created = await create(shared, body, create_headers("sk-sg-alice", **sg))
    assert status == 200
    sg_id = sg_created["output"]["task_id"]
    await foreign_equals_unknown(shared, sg_id, "sk-alice")
    assert await listed_ids(shared, "sk-alice") == [task_id]


# --- signed links ------------------------------------------------------------------------------
def link_parts(link: dict) -> tuple[str, dict[str, str]]:
    parts = urlsplit(link["url"])
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_a_link_signed_for_one_task_does_not_open_another(client):
    first, second = await succeeded_task(client), await succeeded_task(client)
    path, params = link_parts(first)
    other_path, _ = link_parts(second)
    response = await client.get(URL(f"{other_path}?{urlencode(params)}", encoded=True))
    await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040")
    assert path != other_path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["Expires", "OSSAccessKeyId", "Signature"]),
       edit=st.text(alphabet="0123456789ABCDEFabcdef+/=_- ", min_size=1, max_size=6),
       position=st.integers(min_value=0, max_value=40))
async def test_any_edit_of_a_signed_field_is_refused(client, field, edit, position):
    if not hasattr(client, "link"):
        client.link = await succeeded_task(client)
    path, params = link_parts(client.link)
    original = params[field]
    changed = original[:position] + edit + original[position:]
    if field == "Expires":
        try:
            if int(changed) == int(original):
                return  # the same instant spelled differently is the same signed value
        except ValueError:
            pass
    params[field] = changed
    response = await client.get(URL(f"{path}?{urlencode(params)}", encoded=True))
    assert response.status == 403
    assert b"SECRET" not in await response.read()
