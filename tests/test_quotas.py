"""Rate quotas like the real service's on the virtual clock, the request journal, the error docs
table, and the command-line switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_server.cli import StartupError, build_parser, settings_from_args
from mock_server.config import Settings
from mock_server.tasks.errors import markdown_table
from mock_server.tasks.regions import REGIONS
from mock_server.traffic.journal import FIELDS, Journal
from mock_server.traffic.quotas import POLICY_QPS, QUERY_QPS
from tests.conftest import (BJ_KEY, CREATE, SG_HOST, SG_KEY, assert_catalogue_error, auth, create,
                            kf2v_body, query)
from tests.test_faults import journal, tasks

PLUS = kf2v_body(model="wanx2.1-kf2v-plus", resolution="720P")


def test_defaults_are_the_documented_numbers():
    settings = Settings()
    assert settings.quotas is True and settings.scenarios is True
    assert settings.submit_rps is None  # each model's own documented rate:
    assert {m.submit_rps for r in REGIONS.values() for m in r.models.values()} == {2}
    assert (settings.query_qps, QUERY_QPS) == (20, 20)
    assert (settings.policy_qps, POLICY_QPS) == (100, 100)


async def test_two_submits_per_second_per_model_then_429_and_nothing_created(make_client):
    client = await make_client(quotas=True)
    assert [(await create(client))[0] for _ in range(2)] == [200, 200]
    response = await client.post(CREATE, json=kf2v_body(), headers={
        "Authorization": f"Bearer {BJ_KEY}", "X-DashScope-Async": "enable"})
    assert_catalogue_error(response.status, await response.json(), "throttling_rate")
    assert response.headers["Retry-After"] == "1"
    assert len(await tasks(client)) == 2
    # Another model and another account have their own windows.
    assert (await create(client, PLUS))[0] == 200
    assert (await create(client, kf2v_body(model="wan2.1-kf2v-plus", resolution="720P"),
                         key=SG_KEY, Host=SG_HOST))[0] == 200
    # A second later the window has room again (the clock is frozen: only advance moves it).
    client.emulator.clock.advance(0.5)
    assert (await create(client))[0] == 429
    client.emulator.clock.advance(0.5)
    assert (await create(client))[0] == 200
    throttled = await journal(client, status="429")
    assert [(e["endpoint"], e["code"], e["task_id"]) for e in throttled] == [
        ("create", "Throttling.RateQuota", None)] * 2


async def test_injected_errors_never_count_against_the_real_quota(make_client):
    """The issue's case: a times=2 throttle rule on create gave five 429s, because the injected
    ones used up the real 2-per-second window too. Now: exactly two injected 429s, then the real
    window's two submits, then the real 429 (docs/assumptions.md "What counts against a rate")."""
    client = await make_client(quotas=True)
    rule = await client.post("/_mock/faults", json={
        "match": {"endpoint": "create"}, "error": {"code": "Throttling.RateQuota"}, "times": 2})
    assert rule.status == 200
    rule_id = (await rule.json())["id"]
    statuses = [(await create(client))[0] for _ in range(5)]  # one frozen instant
    assert statuses == [429, 429, 200, 200, 429]
    faults = [e["faults"] for e in await journal(client, endpoint="create")]
    assert faults == [[rule_id], [rule_id], [], [], []]  # two injected, then the real quota's
    assert len(await tasks(client)) == 2
    # A scenario's injected error is not counted either; a disconnect neither.
    client.emulator.clock.advance(1)
    assert (await create(client, **{"X-Mock-Scenario": "throttled"}))[0] == 429
    await client.post("/_mock/faults", json={"match": {"endpoint": "query"}, "disconnect": {},
                                             "times": 25})
    for _ in range(25):
        try:
            await client.get("/api/v1/tasks/x", headers=auth())
        except Exception:  # the connection is dropped, as the rule says
            pass
    assert [(await create(client))[0] for _ in range(3)] == [200, 200, 429]
    assert (await client.get("/api/v1/tasks/x", headers=auth())).status == 200  # 20/s untouched


async def test_retry_after_counts_the_seconds_until_the_window_has_room(make_client):
    client = await make_client(quotas=True, submit_rps=1)
    assert (await create(client))[0] == 200
    client.emulator.clock.advance(0.2)
    response = await client.post(CREATE, json=kf2v_body(), headers={
        "Authorization": f"Bearer {BJ_KEY}", "X-DashScope-Async": "enable"})
    assert response.status == 429 and response.headers["Retry-After"] == "1"


async def test_query_list_and_cancel_share_20_per_second(make_client):
    client = await make_client(quotas=True)
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    for _ in range(18):
        await query(client, task_id)
    assert (await client.get("/api/v1/tasks", headers=auth())).status == 200
    assert (await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())).status == 200
    response = await client.get(f"/api/v1/tasks/{task_id}", headers=auth())
    assert_catalogue_error(response.status, await response.json(), "throttling_rate")
    # Submits are counted apart from queries; the other region's account apart from this one.
    assert (await create(client))[0] == 200
    assert (await client.get("/api/v1/tasks", headers=auth(SG_KEY, Host=SG_HOST))).status == 200
    client.emulator.clock.advance(1)
    await query(client, task_id)


async def test_get_policy_100_per_second_per_model(make_client):
    client = await make_client(quotas=True, policy_qps=3)
    url = "/api/v1/uploads?action=getPolicy&model=wan2.2-kf2v-flash"
    assert [(await client.get(url, headers=auth())).status for _ in range(4)] == [200] * 3 + [429]
    other = "/api/v1/uploads?action=getPolicy&model=wanx2.1-kf2v-plus"
    assert (await client.get(other, headers=auth())).status == 200


async def test_configurable_numbers_and_unauthenticated_requests_are_not_counted(make_client):
    client = await make_client(quotas=True, submit_rps=3, query_qps=2)
    assert [(await create(client))[0] for _ in range(4)] == [200, 200, 200, 429]
    for _ in range(5):
        assert (await client.get("/api/v1/tasks/x", headers=auth("sk-wrong"))).status == 401
    assert [(await client.get("/api/v1/tasks/x", headers=auth())).status
            for _ in range(3)] == [200, 200, 429]


async def test_quotas_off_never_throttle(client):
    assert {(await create(client))[0] for _ in range(6)} == {200}


async def test_reset_clears_quota_counts(make_client):
    client = await make_client(quotas=True)
    for _ in range(2):
        await create(client)
    assert (await create(client))[0] == 429
    await client.post("/_mock/reset")
    assert (await create(client))[0] == 200


# --- the journal -------------------------------------------------------------------------------------
async def test_journal_records_every_api_and_oss_request(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    await query(client, task_id)
    await client.get("/api/v1/tasks", headers=auth())
    await client.get("/api/v1/nowhere", headers=auth())
    await client.get("/_mock/tasks")
    entries = await journal(client)
    assert [(e["method"], e["endpoint"], e["status"]) for e in entries] == [
        ("POST", "create", 200), ("GET", "query", 200), ("GET", "list", 200),
        ("GET", None, 404)]
    first = entries[0]
    assert set(first) == set(FIELDS) and {"method", "path", "region", "api_key_id", "status",
                                           "code", "latency_ms", "request_id", "task_id",
                                           "endpoint", "time", "faults"} <= set(FIELDS)
    assert first["path"] == CREATE and first["region"] == "cn-beijing"
    assert first["api_key_id"] == client.emulator.keys.lookup(f"Bearer {BJ_KEY}",
                                                              "cn-beijing").api_key_id
    assert first["task_id"] == task_id and entries[1]["task_id"] == task_id
    assert first["code"] is None and entries[3]["code"] == "InvalidURL"
    assert first["time"] == "2026-11-25T02:00:00+00:00" and first["latency_ms"] >= 0
    assert first["request_id"] == created["request_id"]
    assert [e["endpoint"] for e in await journal(client, task_id=task_id)] == ["create", "query"]
    assert len(await journal(client, endpoint="list", status="200")) == 1
    assert (await (await client.delete("/_mock/requests")).json()) == {"requests": []}
    assert await journal(client) == []


def test_the_journal_is_bounded():
    log = Journal(size=3)
    for n in range(5):
        log.record({"n": n, "status": 200})
    assert [e["n"] for e in log.entries()] == [2, 3, 4]


# --- docs and command line ---------------------------------------------------------------------------
def test_docs_errors_md_is_generated_from_the_catalogue():
    path = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
    assert path.read_text() == markdown_table(), (
        "docs/errors.md is stale: run  python -m mock_server.tasks.errors > docs/errors.md")


def test_cli_switches_and_numbers(monkeypatch):
    parser = build_parser()
    defaults = settings_from_args(parser.parse_args(["serve"]))
    assert (defaults.quotas, defaults.scenarios, defaults.submit_rps) == (True, True, None)
    settings = settings_from_args(parser.parse_args([
        "serve", "--no-quotas", "--no-scenarios", "--submit-rps", "5", "--query-qps", "7",
        "--policy-qps", "9"]))
    assert (settings.quotas, settings.scenarios) == (False, False)
    assert (settings.submit_rps, settings.query_qps, settings.policy_qps) == (5, 7, 9)
    monkeypatch.setenv("KF2V_MOCK_NO_QUOTAS", "1")
    monkeypatch.setenv("KF2V_MOCK_SUBMIT_RPS", "4")
    settings = settings_from_args(build_parser().parse_args(["serve"]))
    assert settings.quotas is False and settings.submit_rps == 4 and settings.scenarios is True


@pytest.mark.parametrize("flag", ["--submit-rps", "--query-qps", "--policy-qps"])
def test_rates_must_be_positive(flag):
    with pytest.raises(StartupError, match="must be at least 1"):
        settings_from_args(build_parser().parse_args(["serve", flag, "0"]))
