"""The report card and the chaos run in a downstream project's pytest session: ``--kf2v-report``
(or ``kf2v_report = on``) prints each test's card in the terminal summary, xdist workers' cards
included; ``--kf2v-chaos SEED`` gives every test a replayable chaos run of its own."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

CLIENTS = '''
import json, urllib.error, urllib.request
from mock_server.testing.samples import frame_pair

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def call(kf2v, path, body=None):
    request = urllib.request.Request(
        kf2v.base_url() + path, method="POST" if body else "GET",
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": "Bearer " + kf2v.api_key(), "X-DashScope-Async": "enable",
                 "Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError):
        return None, {}

def create(kf2v, n=1):
    first, last = frame_pair(n, (320, 240)).data_urls()
    body = {"model": "wan2.2-kf2v-flash", "parameters": {"resolution": "480P"},
            "input": {"prompt": "scene %d" % n, "first_frame_url": first, "last_frame_url": last}}
    return call(kf2v, "/services/aigc/image2video/video-synthesis", body)

def fire_and_forget(kf2v):
    """Submits, looks once, and reports whatever it saw."""
    status, body = create(kf2v)
    return call(kf2v, "/tasks/" + body["output"]["task_id"])[1]

def happy_path_only(kf2v, tasks=3):
    """Waits (on the virtual clock) but gives up on any error."""
    for n in range(tasks):
        status, body = create(kf2v, n + 1)
        if status != 200:
            continue
        for _ in range(60):
            status, answer = call(kf2v, "/tasks/" + body["output"]["task_id"])
            if status != 200 or answer["output"]["task_status"] not in ("PENDING", "RUNNING"):
                break
            kf2v.advance(2)
            kf2v.drain()
'''


@pytest.fixture
def pytester(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(clients=CLIENTS)
    return pytester


FLAWED_AND_CLEAN = '''
from clients import fire_and_forget

def test_flawed(kf2v):
    kf2v.freeze()
    fire_and_forget(kf2v)

def test_clean(kf2v):
    assert kf2v.report().clean
'''


def test_report_cards_in_the_terminal_summary(pytester):
    pytester.makepyfile(test_pytester_cards=FLAWED_AND_CLEAN)
    result = pytester.runpytest_inprocess("--kf2v-report", "on", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    summary = out[out.index("kf2v-mock client report cards"):]
    assert "test_pytester_cards.py::test_flawed" in summary
    assert re.search(r"error\s+abandoned-task\s+\d{6}\s+\w{8}", summary)
    assert "fix: Poll until SUCCEEDED" in summary
    assert "test_clean" not in summary
    assert "1 test(s) with a clean card and no chaos run, 1 shown above" in summary
    # Off by default: no section at all.
    quiet = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert "kf2v-mock client report cards" not in quiet.stdout.str()


def test_the_ini_key_and_xdist_workers(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nkf2v_report = on\n")
    pytester.makepyfile(test_pytester_cards=FLAWED_AND_CLEAN)
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider")  # a worker
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "kf2v-mock client report cards" in out and "abandoned-task" in out
    assert "1 test(s) with a clean card and no chaos run, 1 shown above" in out


def test_a_chaos_run_per_test_replays_with_the_same_seed(pytester):
    pytester.makepyfile(test_pytester_chaos='''
        from clients import happy_path_only

        def test_one(kf2v):
            kf2v.freeze()
            happy_path_only(kf2v)

        def test_two(kf2v):
            kf2v.freeze()
            happy_path_only(kf2v)
    ''')
    args = ["--kf2v-chaos", "11", "--kf2v-chaos-profile", "network", "-p", "no:cacheprovider"]
    outputs = []
    for _ in range(2):
        result = pytester.runpytest_inprocess(*args)
        result.assert_outcomes(passed=2)
        outputs.append(result.stdout.str())
    assert "chaos=11/network" in outputs[0]  # the header says so
    chaos = [re.findall(r"Chaos run: .*?(?=\n\S|\Z)", out, re.S) for out in outputs]
    assert len(chaos[0]) == 2 and chaos[0] == chaos[1]  # each test's run replays exactly
    assert "test test_pytester_chaos.py::test_one" in chaos[0][0]
    assert chaos[0][0].split("\n", 1)[1] != chaos[0][1].split("\n", 1)[1]  # tests differ
    assert "create-throttled" in outputs[0] or "poll-" in outputs[0]


def test_kf2v_chaos_in_one_test_only(pytester):
    pytester.makepyfile(test_pytester_chaos_one='''
        from clients import happy_path_only

        def test_chaos(kf2v):
            kf2v.freeze()
            kf2v.chaos(11, "network")
            happy_path_only(kf2v)
            assert kf2v.report().data["chaos"]["seed"] == 11

        def test_after(kf2v):
            assert kf2v.server.emulator.chaos is None
    ''')
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_bad_chaos_profile_is_a_usage_error(pytester):
    pytester.makepyfile(test_pytester_bad="def test_x(kf2v):\n    pass\n")
    result = pytester.runpytest_inprocess("--kf2v-chaos", "1", "--kf2v-chaos-profile", "wild")
    assert "kf2v chaos profile must be one of default, quick, network, lifecycle" in (
        result.stdout.str() + result.stderr.str())
