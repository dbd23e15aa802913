"""The seeded chaos run: a schedule keyed by the order of creates (and of each task's queries),
built from scenario actions and fault rules; the same seed and the same client replay the same
run (same schedule, same findings); a careful client comes through clean, a careless one gets
its mistakes named. Every wait is on the virtual clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mock_server.config import Settings
from mock_server.report.card import ReportCard
from mock_server.testing.embedded import EmbeddedServer
from mock_server.traffic.chaos import PATHS, PROFILES, ChaosRun
from tests import contract_check, report_clients
from tests.report_clients import Api

T0 = datetime(2026, 11, 25, 2, 0, 0, tzinfo=timezone.utc)
BJ_KEY = "sk-kf2v-mock-beijing"
# With the default profile, this seed gives the first four creates: a long PENDING and a cut-off
# download; a 429 on the create; a dropped fourth poll; a cut-off download.
SEED = 2


# --- the schedule alone ------------------------------------------------------------------------------
def schedule(seed: int, creates: int, profile: str = "default", label: str = "") -> list[list]:
    chaos = ChaosRun(seed, profile, label=label)
    for n in range(creates):
        chaos.draw_create(f"r{n}")
    return [draw["paths"] for draw in chaos.describe()["schedule"]]


def test_the_same_seed_draws_the_same_schedule_and_another_seed_or_test_another():
    assert schedule(SEED, 20) == schedule(SEED, 20)
    assert schedule(SEED, 20) != schedule(SEED + 1, 20)
    assert schedule(SEED, 20, label="tests/a.py::t") != schedule(SEED, 20, label="tests/b.py::t")
    # Keyed by the create's number: the first ten draws do not depend on how many follow.
    assert schedule(SEED, 20)[:10] == schedule(SEED, 10)


def test_the_default_profile_keeps_every_path_and_the_others_a_part():
    default = PROFILES["default"]
    assert all(getattr(default, path.replace("-", "_")) > 0 for path in PATHS)
    drawn = {p["path"] for draws in schedule(7, 200) for p in draws}
    assert drawn == set(PATHS)
    network = {p["path"] for draws in schedule(7, 200, "network") for p in draws}
    assert network == {"create-throttled", "poll-503", "poll-dropped", "poll-throttled",
                       "download-truncated"}
    lifecycle = {p["path"] for draws in schedule(7, 200, "lifecycle") for p in draws}
    assert lifecycle == {"long-pending", "long-running", "failed-at-end", "link-expired"}
    quick = [p["seconds"] for draws in schedule(7, 200, "quick") for p in draws if "seconds" in p]
    assert quick and max(quick) <= 8


def test_a_draw_is_a_scenario_of_fault_rule_actions():
    chaos = ChaosRun(SEED, "default")
    name, throttled = next((n, s) for n, s in (chaos.draw_create(f"r{i}") for i in range(10))
                           if s.request and s.request[0][0] == "error")
    assert name.startswith("chaos:")
    (kind, action), = throttled.request
    assert action["name"] == "throttling_rate" and 1 <= action["retry_after"] <= 3
    with_rules = next(s for _, s in (chaos.draw_create(f"s{i}") for i in range(30))
                      if any("after" in rule for rule in s.task))
    rule = next(r for r in with_rules.task if "after" in r)
    assert rule["match"] == {"endpoint": "query"} and rule["times"] == 1 and rule["after"] >= 0


def test_realistic_timing_makes_the_long_paths_ten_times_longer():
    fast = ChaosRun(3, "default", timing="fast")
    slow = ChaosRun(3, "default", timing="realistic")
    for n in range(30):
        fast.draw_create(f"r{n}")
        slow.draw_create(f"r{n}")
    seconds = [(a["seconds"], b["seconds"])
               for x, y in zip(fast.draws, slow.draws) for a, b in zip(x.paths, y.paths)
               if "seconds" in a]
    assert seconds and all(b == pytest.approx(a * 10, abs=1) for a, b in seconds)


# --- over HTTP ----------------------------------------------------------------------------------------
def chaos_server(data_dir) -> EmbeddedServer:
    """A fresh emulator: a frozen clock at T0, the chaos run with SEED."""
    settings = Settings(beijing_port=0, singapore_port=0, render_preset="ultrafast",
                        log_requests=False, data_dir=data_dir, clock_start=T0, clock_frozen=True,
                        chaos_seed=SEED)
    return EmbeddedServer(settings, wrap_app=contract_check.install)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with chaos_server(tmp_path_factory.mktemp("chaos")) as server:
        yield server


def client_of(server: EmbeddedServer) -> Api:
    def sleep(seconds: float) -> None:
        server.advance(seconds)
        server.drain()
    return Api(server.urls["cn-beijing"], BJ_KEY, sleep)


@pytest.fixture
def api(server) -> Api:
    server.reset()  # also starts the schedule again from its first create
    server.freeze(True)
    return client_of(server)


def chaos_card(api: Api) -> ReportCard:
    return ReportCard.from_json(api.http.get(api.root + "/_mock/report?final=true").json())


def replayable(card: ReportCard) -> tuple:
    """The parts of a run that must replay exactly (request ids are new each time)."""
    rows = [{k: v for k, v in row.items() if k != "request_id"}
            for row in card.data["chaos"]["schedule"]]
    findings = [(f["rule"], f["summary"], f["evidence"]["task_ids"], f["time"])
                for f in card.findings]
    return rows, findings


def test_a_careless_client_gets_the_mistakes_the_hard_paths_reveal(api):
    assert report_clients.gives_up_on_anything(api) == 0
    card = chaos_card(api)
    assert card.rules() == {"no-retry-on-throttle", "abandoned-task", "incomplete-download"}
    rows = card.data["chaos"]["schedule"]
    assert [r["attempt"] for r in rows] == [1, 2, 3, 4]
    by_path = {p["path"]: r for r in rows for p in r["paths"] if p["hit"]}
    assert "no-retry-on-throttle" in by_path["create-throttled"]["findings"]
    assert "abandoned-task" in by_path["poll-dropped"]["findings"]
    assert "incomplete-download" in by_path["download-truncated"]["findings"]
    text = card.text()
    assert f"Chaos run: seed {SEED}, profile default" in text
    assert "poll-dropped at query 4" in text and "create-throttled (Retry-After 3 s)" in text


def test_the_same_seed_and_client_replay_the_same_run(tmp_path):
    """Two fresh emulators with the same seed (and clock start): the same schedule, outcomes and
    findings, down to the task ids and the virtual times."""
    runs = []
    for n in range(2):
        with chaos_server(tmp_path / f"run{n}") as server:
            api = client_of(server)
            report_clients.gives_up_on_anything(api)
            runs.append(replayable(chaos_card(api)))
    assert runs[0] == runs[1]
    rows, findings = runs[0]
    assert len(rows) == 4 and len(findings) == 4


def test_a_careful_client_comes_through_every_hard_path_clean(api, server):
    videos = report_clients.correct(api, tasks=4)
    card = chaos_card(api)
    assert card.findings == [], card.text()
    hit = {p["path"] for row in card.data["chaos"]["schedule"] for p in row["paths"] if p["hit"]}
    assert {"create-throttled", "long-pending", "poll-dropped", "download-truncated"} <= hit
    assert sum(v is not None for v in videos) == 4
    rules = {r["id"]: r for r in api.http.get(api.root + "/_mock/faults").json()["faults"]}
    dropped = next(r for r in rules.values() if r["id"].endswith("poll-dropped"))
    assert (dropped["source"], dropped["applied"], dropped["after"]) == (
        "scenario:chaos:3", 1, 3)


@pytest.mark.parametrize("seed", range(30, 35))
def test_the_careful_client_is_clean_whatever_the_seed(api, server, seed):
    api.http.post(api.root + "/_mock/chaos", json={"seed": seed}).raise_for_status()
    try:
        report_clients.correct(api, tasks=4)
        card = chaos_card(api)
        assert card.clean, card.text()
        assert card.data["chaos"]["seed"] == seed
    finally:
        api.http.post(api.root + "/_mock/chaos", json={"seed": SEED}).raise_for_status()


def test_the_chaos_api(api):
    body = api.http.get(api.root + "/_mock/chaos").json()
    assert (body["enabled"], body["seed"], body["profile"]) == (True, SEED, "default")
    assert [p["name"] for p in body["profiles"]] == list(PROFILES)
    for bad in ({"seed": "x"}, {"seed": 1, "profile": "wild"}, {"seed": 1, "other": 1}):
        response = api.http.post(api.root + "/_mock/chaos", json=bad)
        assert response.status_code == 400 and response.json()["code"] == "InvalidParameter"
    try:
        assert api.http.delete(api.root + "/_mock/chaos").json() == {"enabled": False}
        report_clients.correct(api)
        card = chaos_card(api)
        assert card.data["chaos"] is None and card.findings == []
    finally:
        api.http.post(api.root + "/_mock/chaos", json={"seed": SEED}).raise_for_status()
