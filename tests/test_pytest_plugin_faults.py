"""The plugin's ``kf2v.fault(...)``, ``kf2v.requests()`` and ``--kf2v-quotas``, which wrap the
fault-rule, request-journal and quota features of the emulator."""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request

import pytest

from mock_server.testing.samples import frame_pair

pytest_plugins = ["pytester"]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def submit(kf2v) -> tuple[int, dict]:
    first, last = frame_pair(1, (320, 240)).data_urls()
    body = {"model": "wan2.2-kf2v-flash", "input": {"first_frame_url": first, "last_frame_url": last},
            "parameters": {"resolution": "480P"}}
    request = urllib.request.Request(
        kf2v.base_url() + "/services/aigc/image2video/video-synthesis", method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {kf2v.api_key()}", "X-DashScope-Async": "enable",
                 "Content-Type": "application/json"})
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_fault_rule_fails_the_next_submit_once(kf2v):
    rule = kf2v.fault(match={"endpoint": "create"}, error={"code": "Throttling.RateQuota"}, times=1)
    assert rule["id"] and [r["id"] for r in kf2v.faults()] == [rule["id"]]
    status, body = submit(kf2v)
    assert (status, body["code"], body["message"]) == (
        429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
    assert kf2v.tasks() == []  # a refused submit creates nothing
    status, body = submit(kf2v)  # the rule retired itself after one use
    assert status == 200, body


def test_fault_rules_can_be_removed(kf2v):
    rule = kf2v.fault(match={"endpoint": "create"}, error={"code": "InternalError"})
    kf2v.clear_faults(rule["id"])
    assert kf2v.faults() == []
    kf2v.fault(match={"endpoint": "create"}, error={"code": "InternalError"})
    kf2v.clear_faults()
    assert kf2v.faults() == [] and submit(kf2v)[0] == 200


def test_task_failure_rule_and_wait_for(kf2v):
    kf2v.freeze()
    kf2v.fault(match={"endpoint": "create"},
               task_failure={"code": "DataInspectionFailed", "message": "Input data may contain "
                             "inappropriate content.", "at": "end"})
    status, body = submit(kf2v)
    assert status == 200, body
    task_id = body["output"]["task_id"]
    assert kf2v.wait_for(task_id, "FAILED")["failure"]["code"] == "DataInspectionFailed"
    with pytest.raises(AssertionError, match="DataInspectionFailed"):
        kf2v.wait_for(task_id, "SUCCEEDED")


def test_requests_journal_shows_what_the_client_did(kf2v):
    status, body = submit(kf2v)
    task_id = body["output"]["task_id"]
    request = urllib.request.Request(f"{kf2v.base_url()}/tasks/{task_id}",
                                     headers={"Authorization": f"Bearer {kf2v.api_key()}"})
    NO_PROXY.open(request, timeout=30).close()
    api = [r for r in kf2v.requests() if r["path"].startswith("/api/")]
    assert [(r["method"], r["endpoint"], r["status"], r["task_id"]) for r in api] == [
        ("POST", "create", 200, task_id), ("GET", "query", 200, task_id)]
    assert all(r["region"] == "cn-beijing" and r["request_id"] for r in api)


def test_reset_between_tests_clears_faults_and_journal(pytester, kf2v):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_pytester_reset=textwrap.dedent('''
        import urllib.request

        def test_a_leaves_a_rule_and_requests(kf2v):
            kf2v.fault(match={"endpoint": "list"}, error={"code": "InternalError"})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            opener.open(urllib.request.Request(kf2v.base_url() + "/tasks/abc", headers={
                "Authorization": "Bearer " + kf2v.api_key()}), timeout=30).close()
            assert kf2v.faults() and kf2v.requests()

        def test_b_starts_clean(kf2v):
            assert kf2v.faults() == []
            assert [r for r in kf2v.requests() if r["path"].startswith("/api/")] == []
    '''))
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


def test_quotas_are_on_by_default_and_switch_off(pytester, monkeypatch):
    pytester.makepyfile(test_pytester_quotas='''
        import os

        def test_quotas(kf2v):
            assert kf2v.server.emulator.settings.quotas is (os.environ["EXPECT_QUOTAS"] == "on")
    ''')
    for ini, args, expected in (("", [], "on"), ("", ["--kf2v-quotas", "off"], "off"),
                                ("kf2v_quotas = off\n", [], "off"),
                                ("kf2v_quotas = off\n", ["--kf2v-quotas", "on"], "on")):
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n" + ini)
        monkeypatch.setenv("EXPECT_QUOTAS", expected)
        pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)
