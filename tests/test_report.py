"""The client report card: small raw-HTTP clients, each reproducing one real-world mistake
(tests/report_clients.py), get exactly that mistake named, and the correct one a clean card; the
rules' edges, thresholds, filters and the ``/_mock/report`` API. Every wait is on the virtual
clock (the clients' ``sleep`` advances it), so the timings the rules judge are exact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from mock_server.config import Settings
from mock_server.report.card import ReportCard, build_report
from mock_server.report.rules import RULES, SEVERITIES, sdk_poll_count
from mock_server.report.thresholds import Thresholds
from mock_server.testing.embedded import EmbeddedServer
from mock_server.traffic.journal import REPORT_FIELDS
from tests import contract_check, report_clients
from tests.report_clients import MISTAKES, Api

T0 = datetime(2026, 11, 25, 2, 0, 0, tzinfo=timezone.utc)
BJ_KEY, SG_KEY = "sk-kf2v-mock-beijing", "sk-kf2v-mock-singapore"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Quotas on (the documented rates), a frozen clock the clients move by sleeping."""
    settings = Settings(beijing_port=0, singapore_port=0, render_preset="ultrafast",
                        log_requests=False, data_dir=tmp_path_factory.mktemp("report"),
                        clock_start=T0, clock_frozen=True)
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        yield server


@pytest.fixture
def api(server) -> Api:
    server.reset()
    server.freeze(True)

    def sleep(seconds: float) -> None:  # the virtual clock moves; renders finish meanwhile
        server.advance(seconds)
        server.drain()
    api = Api(server.urls["cn-beijing"], BJ_KEY, sleep)
    api.t0 = server.call(server.emulator.clock.now)  # the clock never goes back between tests
    return api


def report(api: Api, **params) -> ReportCard:
    response = api.http.get(api.root + "/_mock/report", params={"final": "true", **params})
    assert response.status_code == 200, response.text
    return ReportCard.from_json(response.json())


# --- each mistake, and nothing else -------------------------------------------------------------------
@pytest.mark.parametrize("client, expected", MISTAKES, ids=[c.__name__ for c, _ in MISTAKES])
def test_the_card_names_exactly_the_mistakes_a_client_makes(api, client, expected):
    client(api)
    card = report(api)
    assert card.rules() == expected, card.text()
    for finding in card.findings:
        rule = RULES[finding["rule"]]
        assert (finding["severity"], finding["why"], finding["fix"]) == (
            rule.severity, rule.why, rule.fix)
        assert finding["evidence"]["request_ids"] and finding["evidence"]["requests"]
        assert finding["key_id"] is not None and finding["summary"]
    assert card.clean == (not {RULES[r].severity for r in expected} & {"error", "warning"})


def test_the_correct_client_gets_a_clean_card_over_several_tasks(api):
    videos = report_clients.correct(api, tasks=3)
    assert all(video and video[4:8] == b"ftyp" for video in videos)
    card = report(api)
    assert card.findings == [] and card.clean
    assert card.data["summary"] == {"requests": card.data["summary"]["requests"], "tasks": 3,
                                    "clients": 1, "errors": 0, "warnings": 0, "infos": 0,
                                    "clean": True}
    assert "No findings" in card.text()


def test_evidence_names_tasks_requests_and_virtual_times(api):
    task_id = api.create(api.body()).json()["output"]["task_id"]
    api.query(task_id)  # PENDING, then never again
    api.sleep(30)
    (finding,) = report(api).findings
    assert finding["rule"] == "abandoned-task" and finding["severity"] == "error"
    assert finding["evidence"]["task_ids"] == [task_id]
    create, poll = finding["evidence"]["requests"]
    assert (create["endpoint"], poll["endpoint"], poll["task_status"]) == ("create", "query",
                                                                             "PENDING")
    assert create["time"] == poll["time"] == api.t0.isoformat() == finding["time"]
    assert finding["evidence"]["last_answer"] == "PENDING"
    assert finding["evidence"]["status_now"] == "SUCCEEDED"
    assert (f"last answer PENDING at {api.t0:%H:%M:%S} (1 query), then no more; it ended "
            "SUCCEEDED") in finding["summary"]


# --- rule edges --------------------------------------------------------------------------------------
def test_a_task_still_being_polled_is_not_abandoned_until_the_run_is_over(api):
    task_id = api.create(api.body()).json()["output"]["task_id"]
    api.query(task_id)
    assert report(api, final="false").findings == []  # asked a moment ago: still waited on
    api.sleep(61)  # longer than abandon_grace_seconds without a question
    assert report(api, final="false").rules() == {"abandoned-task"}
    api.sleep(1)
    assert report(api, final="false", abandon_grace_seconds="3600").findings == []


def test_a_cancel_or_a_list_after_the_end_counts_as_seeing_the_task_end(api):
    first = api.create(api.body("one")).json()["output"]["task_id"]
    assert api.http.post(f"{api.base}/tasks/{first}/cancel",
                         headers={"Authorization": f"Bearer {BJ_KEY}"}).status_code == 200
    api.sleep(1)
    second = api.create(api.body("two")).json()["output"]["task_id"]
    api.sleep(30)
    listed = api.http.get(f"{api.base}/tasks", headers={"Authorization": f"Bearer {BJ_KEY}"})
    assert second in [t["task_id"] for t in listed.json()["data"]]
    assert report(api).findings == []


def test_one_or_two_queries_after_the_end_are_fine(api):
    task_id = report_clients.submit(api, api.body())
    output = report_clients.wait(api, task_id)
    api.query(task_id)  # a second look, e.g. for a fresh link
    api.query(task_id)
    report_clients.fetch_video(api, task_id, output)
    assert report(api).findings == []
    api.query(task_id)
    assert report(api).rules() == {"poll-after-terminal"}
    assert report(api, polls_after_terminal="3").findings == []


def test_one_recheck_of_an_unknown_id_is_fine(api):
    for _ in range(2):
        api.query("0c1d3f7e-0000-4000-8000-000000000000")
        api.sleep(1)
    assert report(api).findings == []


def test_spacing_is_not_judged_on_a_frozen_clock_nobody_moves(api):
    """No time passes between requests on a frozen clock: no gap can be judged too short."""
    task_id = api.create(api.body()).json()["output"]["task_id"]
    for _ in range(6):
        api.query(task_id)
    assert report(api, final="false").findings == []


def test_polling_slower_than_the_sdk_but_for_too_many_times_is_too_fast(api):
    """Every 1.5 s for a long task is not the SDK's schedule, which backs off to 5 s."""
    api.fault(match={"endpoint": "create"}, task_timing={"queue_wait": 5, "run_time": 60})
    task_id = report_clients.submit(api, api.body())
    while (output := api.query(task_id).json()["output"])["task_status"] not in ("SUCCEEDED",):
        api.sleep(1.5)
    report_clients.fetch_video(api, task_id, output)
    (finding,) = report(api).findings
    assert finding["rule"] == "poll-too-fast"
    # the SDK polls at 0, 1, 2, 4, 6, 8, 12, 16, 20, 25, ... 65 s: 18 times in 66 s
    assert (finding["evidence"]["polls"], finding["evidence"]["sdk_polls_over_same_time"]) == (
        45, 18)
    assert "45 polls in 66 s; the SDK's wait() makes about 18" in finding["summary"]


def test_the_sdk_poll_count_follows_its_schedule():
    # polls at 0, 1, 2, 4, 6, 8, 12, 16, 20, 25, 30, ...
    assert [sdk_poll_count(s) for s in (0, 0.9, 1, 2, 3.9, 4, 8, 12, 20, 25, 30)] == [
        1, 1, 2, 3, 3, 4, 6, 7, 9, 10, 11]


def test_quota_429s_on_polls_are_polling_too_fast(server, api):
    server.call(setattr, server.emulator.quotas, "query_qps", 3)
    try:
        task_id = api.create(api.body()).json()["output"]["task_id"]
        statuses = [api.query(task_id).status_code for _ in range(5)]
    finally:
        server.call(setattr, server.emulator.quotas, "query_qps", 20)
    assert statuses == [200, 200, 200, 429, 429]
    throttled = [f for f in report(api, final="false").findings if f["rule"] == "poll-too-fast"]
    assert [f["evidence"]["throttled_queries"] for f in throttled] == [2]


def test_retrying_a_5xx_at_a_fixed_short_interval_is_no_backoff(api):
    api.fault(match={"endpoint": "query"}, error={"name": "model_unavailable"}, times=4)
    task_id = api.create(api.body()).json()["output"]["task_id"]
    for _ in range(5):
        api.query(task_id)
        api.sleep(0.5)
    found = {f["rule"]: f for f in report(api, final="false").findings}
    assert found["no-backoff"]["evidence"]["retry_delays_seconds"] == [0.5, 0.5, 0.5, 0.5]
    assert "retried 4 times in a row after 503 ModelUnavailable" in found["no-backoff"]["summary"]


def test_the_sdk_schedule_through_503s_is_backoff_enough(api):
    api.fault(match={"endpoint": "query"}, error={"name": "model_unavailable"}, times=4)
    task_id = report_clients.submit(api, api.body())
    report_clients.fetch_video(api, task_id, report_clients.wait(api, task_id))
    assert report(api).findings == []


def test_a_link_served_expired_is_not_the_clients_doing(api):
    """The link expired before the client could use it (a fault): no download-after-expiry; the
    correct client re-queries for a fresh link and gets the video."""
    api.fault(expire_url={}, times=1)
    assert report_clients.correct(api)[0][4:8] == b"ftyp"
    assert report(api).findings == []


def test_re_sending_an_expired_link_is_retrying_an_unchanging_answer(api):
    task_id = report_clients.submit(api, api.body())
    output = report_clients.wait(api, task_id)
    api.sleep(25 * 3600)
    statuses = [api.download(output["video_url"]).status_code for _ in range(3)]
    assert statuses == [403, 403, 403]
    found = {f["rule"]: f for f in report(api).findings}
    assert set(found) == {"download-after-expiry", "retried-unchanged-4xx"}
    assert found["retried-unchanged-4xx"]["evidence"]["resent"] == 2
    assert found["download-after-expiry"]["evidence"]["seconds_late"] == pytest.approx(3600, abs=5)


def test_a_dropped_create_retried_is_not_a_duplicate(api):
    """A dropped connection before the create ran made nothing: retrying it is right."""
    api.fault(match={"endpoint": "create"}, disconnect={}, times=1)
    body = api.body()
    with pytest.raises(requests.ConnectionError):
        api.create(body)
    api.sleep(1)
    task_id = report_clients.submit(api, body)
    report_clients.finish(api, task_id)
    assert report(api).findings == []


def test_the_same_body_on_purpose_is_not_a_duplicate(api):
    """Two tasks from one body that the client both waits on are two jobs, not a lost answer."""
    body = api.body()
    ids = [report_clients.submit(api, body) for _ in range(2)]
    for task_id in ids:
        report_clients.finish(api, task_id)
    assert report(api).findings == []


# --- per key and account, filters, thresholds, the API -------------------------------------------------
@pytest.fixture
def two_clients(api, server):
    """A flawed Beijing client and a correct Singapore one."""
    report_clients.reports_success_while_pending(api)
    singapore = Api(server.urls["ap-southeast-1"], SG_KEY, api.sleep, region="ap-southeast-1")
    report_clients.correct(singapore)
    keys = {a.region: a.api_key_id for a in server.call(server.emulator.keys.keys)}
    accounts = {a.region: a.account_id for a in server.call(server.emulator.keys.keys)}
    return keys, accounts


def test_clients_are_graded_per_key_with_their_account(api, two_clients):
    keys, accounts = two_clients
    card = report(api)
    rows = {c["key_id"]: c for c in card.data["clients"]}
    assert set(rows) == set(keys.values())
    beijing, singapore = rows[keys["cn-beijing"]], rows[keys["ap-southeast-1"]]
    assert (beijing["account_id"], beijing["regions"], beijing["errors"], beijing["rules"]) == (
        accounts["cn-beijing"], ["cn-beijing"], 1, ["abandoned-task"])
    assert (singapore["tasks"], singapore["errors"], singapore["warnings"], singapore["rules"]) == (
        1, 0, 0, [])
    assert singapore["requests"] >= 4  # create, polls and the download (a download has no key)
    assert card.data["summary"]["clients"] == 2 and card.data["summary"]["tasks"] == 2


def test_filters_by_key_account_region_and_since(api, two_clients):
    keys, accounts = two_clients
    assert report(api, key_id=keys["ap-southeast-1"]).findings == []
    assert report(api, key_id=keys["cn-beijing"]).rules() == {"abandoned-task"}
    assert report(api, account=accounts["cn-beijing"]).rules() == {"abandoned-task"}
    assert [c["key_id"] for c in report(api, account=accounts["ap-southeast-1"]).data["clients"]
            ] == [keys["ap-southeast-1"]]
    assert report(api, region="ap-southeast-1").findings == []
    later = (api.t0 + timedelta(seconds=1)).isoformat()
    card = report(api, since=later)
    assert card.findings == [] and card.data["filters"] == {"since": later}
    unencoded = api.http.get(f"{api.root}/_mock/report?final=true&since={later}")  # + -> space
    assert unencoded.json()["filters"] == {"since": later}


def test_thresholds_have_documented_defaults_and_can_be_changed(api):
    card = report(api)
    assert card.data["thresholds"] == Thresholds().to_json()
    assert card.data["thresholds"]["polls_after_terminal"] == 2
    assert report(api, polls_after_terminal="5").data["thresholds"]["polls_after_terminal"] == 5
    for bad in ({"polls_after_terminal": "many"}, {"polls_after_terminal": "-1"},
                {"no_such_threshold": "1"}, {"since": "yesterday"}):
        response = api.http.get(api.root + "/_mock/report", params=bad)
        assert response.status_code == 400 and response.json()["code"] == "InvalidParameter"


def test_the_json_has_every_rule_for_a_console(api):
    card = report(api).data
    assert [r["rule"] for r in card["rules"]] == list(RULES)
    assert {"unknown-not-terminal", "poll-after-terminal", "abandoned-task",
            "result-not-downloaded", "download-after-expiry", "poll-too-fast", "no-backoff",
            "no-retry-on-throttle", "retried-unchanged-4xx", "duplicate-submit",
            "wrong-region-key", "sync-call", "submit-burst"} <= set(RULES)
    for rule in card["rules"]:
        assert rule["severity"] in SEVERITIES and rule["why"] and rule["fix"] and rule["title"]
    assert set(card) == {"generated_at", "final", "filters", "thresholds", "summary", "clients",
                         "findings", "rules", "chaos"}


def test_the_journal_carries_the_client_facts(api):
    body = api.body()
    task_id = api.create(body).json()["output"]["task_id"]
    api.create(body, key="sk-kf2v-mock-singapore")
    api.create(body, key="sk-made-up")
    api.create(body, async_header=False)
    api.sleep(30)
    output = api.query(task_id).json()["output"]
    api.download(output["video_url"])
    entries = api.http.get(api.root + "/_mock/requests").json()["requests"]
    create, other_region, made_up, sync, query, download = entries
    assert (create["model"], create["async_header"], create["key_region"]) == (
        "wan2.2-kf2v-flash", True, "cn-beijing")
    assert create["body_digest"] == other_region["body_digest"] == sync["body_digest"]
    assert len(create["body_digest"]) == 16
    assert other_region["key_region"] == "ap-southeast-1" and other_region["api_key_id"] is None
    assert other_region["key_id"] not in (None, create["key_id"])
    assert made_up["key_id"].startswith("?")
    assert "sk-made-up" not in str({k: made_up[k] for k in REPORT_FIELDS})  # a digest, not the key
    assert sync["async_header"] is False
    assert (query["task_status"], query["link_expires"]) == ("SUCCEEDED", download["link_expires"])
    assert datetime.fromisoformat(query["link_expires"]) > datetime.fromisoformat(query["time"])
    assert download["task_id"] == task_id and download["truncated"] is False


def test_build_report_alone_from_journal_dicts():
    """The report is a pure function of journal entries: a downstream tool can grade a saved
    journal (GET /_mock/requests) without an emulator."""
    t = T0.isoformat()
    journal = [{"method": "GET", "path": "/api/v1/tasks/x", "region": "cn-beijing",
                "endpoint": "query", "status": 200, "code": None, "request_id": f"r{i}",
                "task_id": "x", "faults": [], "key_id": "123456", "task_status": "UNKNOWN",
                "time": (T0 + timedelta(seconds=10 * i)).isoformat()} for i in range(4)]
    card = build_report(journal, {}, T0 + timedelta(minutes=5), final=True)
    assert [f["rule"] for f in card["findings"]] == ["unknown-not-terminal"]
    assert card["findings"][0]["evidence"]["queries_after_unknown"] == 3
    assert card["findings"][0]["time"] == t
