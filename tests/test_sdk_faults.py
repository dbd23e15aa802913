"""What the official SDK (dashscope 2.0.2, unmodified) experiences under each fault action, each
in-band scenario kind and the real quotas, on real sockets (sdk-wire-contract §4, §5).

- 1.x ``wait()`` retries 503/504 and returns any other error at once;
- the 2.0 client retries 429 and 5xx on every request, submit included, honouring Retry-After;
  a throttled submit creates nothing, so its retry is no duplicate.
"""

from __future__ import annotations

import dashscope
import pytest
import requests
from dashscope import VideoSynthesis
from dashscope.v2.errors import InternalServerError

from fixtures.frames import frame_data_url
from tests.conftest import BJ_KEY

FIRST = frame_data_url(320, 240, seed=41)
LAST = frame_data_url(320, 240, seed=42)
MODEL = "wan2.2-kf2v-flash"


@pytest.fixture(autouse=True)
def fresh(live_server, monkeypatch):
    live_server.reset()
    live_server.freeze(False)
    monkeypatch.setattr(dashscope, "base_http_api_url", live_server.urls["cn-beijing"])


def admin(live_server, method: str, path: str, **kwargs):
    base = live_server.urls["cn-beijing"].removesuffix("/api/v1")
    response = requests.request(method, f"{base}{path}", timeout=30, **kwargs)
    return response.json()


def fault(live_server, rule: dict) -> dict:
    return admin(live_server, "POST", "/_mock/faults", json=rule)


def journal(live_server, **filters) -> list[dict]:
    return admin(live_server, "GET", "/_mock/requests", params=filters)["requests"]


def tasks(live_server) -> list[dict]:
    return admin(live_server, "GET", "/_mock/tasks")["tasks"]


def call(**extra):
    return VideoSynthesis.call(api_key=BJ_KEY, model=MODEL, prompt=extra.pop("prompt", "a cat"),
                               first_frame_url=FIRST, last_frame_url=LAST, resolution="480P",
                               wait_timeout=60, **extra)


def v2_client(live_server, retries: int = 2):
    return dashscope.Client(api_key=BJ_KEY, base_url=live_server.urls["cn-beijing"],
                            max_retries=retries)


def v2_create(client, prompt: str = "p"):
    return client.videos.jobs.create(model=MODEL, prompt=prompt, resolution="480P",
                                     extra_input={"first_frame_url": FIRST, "last_frame_url": LAST})


# --- error -------------------------------------------------------------------------------------------
def test_1x_submit_error_is_returned_by_async_call_and_nothing_is_created(live_server):
    fault(live_server, {"match": {"endpoint": "create"}, "error": {"code": "DataInspectionFailed"}})
    rsp = VideoSynthesis.async_call(api_key=BJ_KEY, model=MODEL, first_frame_url=FIRST,
                                    last_frame_url=LAST, resolution="480P")
    assert (rsp.status_code, rsp.code, rsp.message) == (
        400, "DataInspectionFailed", "Input or output data may contain inappropriate content.")
    assert rsp.request_id and tasks(live_server) == []


def test_1x_wait_retries_503_while_polling_and_succeeds(live_server):
    fault(live_server, {"match": {"endpoint": "query"}, "error": {"code": "ModelUnavailable"},
                        "times": 2})
    rsp = call()
    assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
    polls = journal(live_server, endpoint="query")
    assert [p["status"] for p in polls[:3]] == [503, 503, 200]
    assert {p["task_id"] for p in polls} == {rsp.output.task_id}


def test_1x_wait_returns_a_500_at_once(live_server):
    fault(live_server, {"match": {"endpoint": "query"}, "error": {"code": "InternalError"},
                        "times": 1})
    rsp = call()
    assert (rsp.status_code, rsp.code) == (500, "InternalError")
    assert len(journal(live_server, endpoint="query")) == 1


def test_v2_retries_429_on_submit_without_duplicates(live_server):
    fault(live_server, {"match": {"endpoint": "create"}, "error": {"code": "Throttling.RateQuota"},
                        "times": 2})
    job = v2_create(v2_client(live_server))
    assert job.status == "PENDING"
    submits = journal(live_server, endpoint="create")
    assert [(s["status"], s["code"]) for s in submits] == [
        (429, "Throttling.RateQuota"), (429, "Throttling.RateQuota"), (200, None)]
    assert [t["task_id"] for t in tasks(live_server)] == [job.task_id]


def test_v2_gives_up_after_three_500s(live_server):
    fault(live_server, {"match": {"endpoint": "create"}, "error": {"code": "InternalError"}})
    with pytest.raises(InternalServerError):
        v2_create(v2_client(live_server))
    assert len(journal(live_server, endpoint="create")) == 3 and tasks(live_server) == []


def test_real_quota_the_v2_client_backs_off_and_no_task_is_duplicated(live_server):
    client = v2_client(live_server)
    jobs = [v2_create(client) for _ in range(3)]  # the third is throttled, retried 1 s later
    submits = journal(live_server, endpoint="create")
    assert [s["status"] for s in submits] == [200, 200, 429, 200]
    assert submits[2]["code"] == "Throttling.RateQuota"
    assert sorted(t["task_id"] for t in tasks(live_server)) == sorted(j.task_id for j in jobs)


# --- task_failure ---------------------------------------------------------------------------------
@pytest.mark.parametrize("at", ["start", "end"])
def test_1x_call_returns_the_failed_task(live_server, at):
    fault(live_server, {"task_failure": {"code": "IPInfringementSuspect", "at": at}})
    rsp = call()
    assert rsp.status_code == 200
    assert (rsp.output.task_status, rsp.output.code, rsp.output.message) == (
        "FAILED", "IPInfringementSuspect",
        "Input data is suspected of being involved in IP infringement.")
    assert not rsp.output.video_url and not rsp.usage


# --- delay, disconnect, truncate --------------------------------------------------------------------
def test_delay_shows_in_the_journal(live_server):
    fault(live_server, {"match": {"endpoint": "create"}, "delay": {"ms": 300}})
    created = VideoSynthesis.async_call(api_key=BJ_KEY, model=MODEL, first_frame_url=FIRST,
                                        last_frame_url=LAST, resolution="480P")
    assert created.status_code == 200
    assert journal(live_server, endpoint="create")[0]["latency_ms"] >= 300


def test_disconnect_on_fetch_raises_in_1x(live_server):
    live_server.freeze()
    created = VideoSynthesis.async_call(api_key=BJ_KEY, model=MODEL, first_frame_url=FIRST,
                                        last_frame_url=LAST, resolution="480P")
    fault(live_server, {"match": {"endpoint": "query"}, "disconnect": {}, "times": 1})
    with pytest.raises(requests.ConnectionError):
        VideoSynthesis.fetch(created, api_key=BJ_KEY)
    assert VideoSynthesis.fetch(created, api_key=BJ_KEY).output.task_status == "PENDING"
    assert [e["status"] for e in journal(live_server, endpoint="query")] == [None, 200]


def test_v2_retries_a_dropped_submit(live_server):
    fault(live_server, {"match": {"endpoint": "create"}, "disconnect": {}, "times": 1})
    job = v2_create(v2_client(live_server))
    assert [e["status"] for e in journal(live_server, endpoint="create")] == [None, 200]
    assert [t["task_id"] for t in tasks(live_server)] == [job.task_id]


def test_truncated_poll_breaks_the_1x_fetch(live_server):
    live_server.freeze()
    created = VideoSynthesis.async_call(api_key=BJ_KEY, model=MODEL, first_frame_url=FIRST,
                                        last_frame_url=LAST, resolution="480P")
    fault(live_server, {"match": {"endpoint": "query"}, "truncate": {"bytes": 20}, "times": 1})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        VideoSynthesis.fetch(created, api_key=BJ_KEY)


# --- expire_url --------------------------------------------------------------------------------------
def test_expired_result_link(live_server):
    fault(live_server, {"expire_url": {}})
    rsp = call()
    assert rsp.output.task_status == "SUCCEEDED"
    video = requests.get(rsp.output.video_url, timeout=30)
    assert video.status_code == 403 and "<Message>Request has expired.</Message>" in video.text


# --- in-band scenarios through the SDK -------------------------------------------------------------
def test_scenario_header_through_1x_headers(live_server):
    rsp = call(headers={"X-Mock-Scenario": "fail-at-end"})
    assert (rsp.output.task_status, rsp.output.code) == ("FAILED", "DataInspectionFailed")
    rsp = VideoSynthesis.async_call(api_key=BJ_KEY, model=MODEL, first_frame_url=FIRST,
                                    last_frame_url=LAST, headers={"X-Mock-Scenario": "arrearage"})
    assert (rsp.status_code, rsp.code) == (400, "Arrearage")


def test_prompt_directive_flaky_polling_through_1x_call(live_server):
    rsp = call(prompt="a cat [mock:flaky-polling]")
    assert rsp.output.task_status == "SUCCEEDED"
    assert [p["status"] for p in journal(live_server, endpoint="query")][:3] == [503, 503, 200]


def test_prompt_directive_throttled_through_v2(live_server):
    from dashscope.v2.errors import RateLimitError
    with pytest.raises(RateLimitError):
        v2_create(v2_client(live_server, retries=1), prompt="[mock:throttled] a cat")
    assert [e["status"] for e in journal(live_server, endpoint="create")] == [429, 429]
    assert tasks(live_server) == []
