"""The pytest plugin (``kf2v``, ``kf2v_server``, ``dashscope_env``, ``kf2v_frames``) as a downstream
project uses it: directly in this suite (the plugin is installed with kf2v-mock), and through
``pytester`` for what needs a fresh session (reset isolation, options, xdist)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from http import HTTPStatus

import dashscope
import pytest
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities.aio_session import close_shared_aio_session

from mock_server.testing.samples import frame_pair

pytest_plugins = ["pytester"]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CREATE = "/services/aigc/image2video/video-synthesis"


def create_task(kf2v, region: str = "cn-beijing", seed: int = 1) -> str:
    """Create a task over raw HTTP; returns its id."""
    first, last = frame_pair(seed, (320, 240)).data_urls()
    model = "wan2.2-kf2v-flash" if region == "cn-beijing" else "wan2.1-kf2v-plus"
    body = {"model": model, "input": {"prompt": "a cat", "first_frame_url": first,
                                      "last_frame_url": last},
            "parameters": {"resolution": "480P" if region == "cn-beijing" else "720P"}}
    request = urllib.request.Request(
        kf2v.base_url(region) + CREATE, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {kf2v.api_key(region)}", "X-DashScope-Async": "enable",
                 "Content-Type": "application/json"})
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())["output"]["task_id"]


def query_status(kf2v, task_id: str, region: str = "cn-beijing") -> str:
    request = urllib.request.Request(f"{kf2v.base_url(region)}/tasks/{task_id}",
                                     headers={"Authorization": f"Bearer {kf2v.api_key(region)}"})
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())["output"]["task_status"]


# --- the fixtures in this suite ------------------------------------------------------------------
def test_both_regions_on_free_ports_with_their_keys(kf2v, kf2v_server):
    bj, sg = kf2v.base_url(), kf2v.base_url("ap-southeast-1")
    assert bj.startswith("http://127.0.0.1:") and bj.endswith("/api/v1") and bj != sg
    assert kf2v.base_url("cn-beijing") == bj
    assert (kf2v.api_key(), kf2v.api_key("ap-southeast-1")) == (
        "sk-kf2v-mock-beijing", "sk-kf2v-mock-singapore")
    assert kf2v_server.emulator.data_dir.exists()  # its own data dir, under pytest's tmp
    assert not kf2v.server.emulator.clock.frozen  # default: the clock runs (see README)
    health = kf2v.admin("GET", "/_mock/health")
    assert (health["timing"], health["seed"]) == ("fast", None)  # random ids unless --kf2v-seed


def test_clock_helpers_move_a_task_through_its_states_without_sleeping(kf2v):
    kf2v.freeze()
    start = kf2v.now()
    task_id = create_task(kf2v)
    assert query_status(kf2v, task_id) == "PENDING"
    running = kf2v.wait_for(task_id, "RUNNING")
    assert running["status"] == "RUNNING" == query_status(kf2v, task_id)
    done = kf2v.wait_for(task_id)  # SUCCEEDED: advances to the end and waits for the clip
    assert done["status"] == "SUCCEEDED" and done["video_ready"]
    assert query_status(kf2v, task_id) == "SUCCEEDED"
    assert kf2v.now() - start < __import__("datetime").timedelta(seconds=10)  # fast profile
    assert kf2v.now() == kf2v.now()  # still frozen: wait_for moved it, nothing else did
    kf2v.advance(3600)
    assert (kf2v.now() - start).total_seconds() >= 3600
    gone = kf2v.wait_for(task_id, "UNKNOWN")  # 24 h after submit
    assert gone["status"] == "UNKNOWN"
    assert (kf2v.now() - start).total_seconds() >= 24 * 3600


def test_wait_for_reports_a_task_that_ends_otherwise(kf2v):
    kf2v.freeze()
    task_id = create_task(kf2v)
    request = urllib.request.Request(f"{kf2v.base_url()}/tasks/{task_id}/cancel", method="POST",
                                     headers={"Authorization": f"Bearer {kf2v.api_key()}"})
    NO_PROXY.open(request, timeout=30).close()
    with pytest.raises(AssertionError, match="is CANCELED, not SUCCEEDED"):
        kf2v.wait_for(task_id)
    with pytest.raises(AssertionError, match="no task"):
        kf2v.wait_for("0385dc79-5ff8-4d82-bcb6-000000000000")


def test_wait_for_works_on_a_running_clock(kf2v):
    task_id = create_task(kf2v)
    assert kf2v.wait_for(task_id)["status"] == "SUCCEEDED"


def test_tasks_lists_this_tests_tasks_only(kf2v):
    first, second = create_task(kf2v), create_task(kf2v, "ap-southeast-1", seed=2)
    assert [(t["task_id"], t["region"]) for t in kf2v.tasks()] == [
        (first, "cn-beijing"), (second, "ap-southeast-1")]


def test_dashscope_env_points_the_sdk_at_the_emulator(dashscope_env, kf2v, monkeypatch):
    import os
    assert os.environ["DASHSCOPE_HTTP_BASE_URL"] == dashscope.base_http_api_url == kf2v.base_url()
    assert os.environ["DASHSCOPE_API_KEY"] == dashscope.api_key == dashscope_env.api_key
    assert "127.0.0.1" in os.environ["NO_PROXY"]
    first, last = frame_pair(3, (320, 240), "JPEG").data_urls()
    rsp = VideoSynthesis.call(model="wan2.2-kf2v-flash", prompt="a cat", first_frame_url=first,
                              last_frame_url=last, resolution="480P")
    assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "SUCCEEDED", rsp
    assert [t["task_id"] for t in kf2v.tasks()] == [rsp.output.task_id]


@pytest.mark.parametrize("kf2v_region", ["ap-southeast-1"])
def test_dashscope_env_in_singapore(dashscope_env, kf2v, kf2v_region):
    assert dashscope.base_http_api_url == kf2v.base_url("ap-southeast-1")
    kf2v.freeze()
    first, last = frame_pair(4, (320, 240)).data_urls()
    created = VideoSynthesis.async_call(model="wan2.1-kf2v-plus", first_frame_url=first,
                                        last_frame_url=last)
    assert created.status_code == 200, created
    kf2v.wait_for(created.output.task_id)
    assert VideoSynthesis.fetch(created).output.task_status == "SUCCEEDED"


async def test_asyncio_client_code(dashscope_env, kf2v):
    """The SDK's aio client from an async test: the emulator runs on its own loop and thread."""
    first, last = frame_pair(5, (320, 240), "WEBP").data_urls()
    kf2v.freeze()
    created = await AioVideoSynthesis.async_call(model="wan2.2-kf2v-flash", first_frame_url=first,
                                                 last_frame_url=last, resolution="480P")
    assert created.status_code == 200, created
    assert (await AioVideoSynthesis.fetch(created)).output.task_status == "PENDING"
    kf2v.wait_for(created.output.task_id)
    done = await AioVideoSynthesis.wait(created)
    assert done.output.task_status == "SUCCEEDED"
    await close_shared_aio_session()  # the SDK keeps one per loop until told


def test_kf2v_frames_fixture(kf2v_frames, tmp_path):
    first, last = kf2v_frames.files(seed=2, size="750x1000", fmt="JPG")
    assert (first.suffix, first.parent) == (".jpg", tmp_path)
    assert first.read_bytes() != last.read_bytes()
    assert kf2v_frames.bad("with_alpha").error == "media_format"


def test_importing_the_plugin_is_cheap():
    """Every pytest run in an environment with kf2v-mock imports it: no server, SDK or images."""
    code = ("import sys, mock_server.testing.pytest_plugin; "
            "print(sorted(m for m in ('aiohttp', 'PIL', 'dashscope', 'faker', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


# --- fresh sessions through pytester --------------------------------------------------------------
HELPERS = '''
import json, urllib.request
from mock_server.testing.samples import frame_pair

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def create_task(kf2v):
    first, last = frame_pair(1, (320, 240)).data_urls()
    body = {"model": "wan2.2-kf2v-flash", "input": {"first_frame_url": first, "last_frame_url": last},
            "parameters": {"resolution": "480P"}}
    request = urllib.request.Request(
        kf2v.base_url() + "/services/aigc/image2video/video-synthesis", method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + kf2v.api_key(), "X-DashScope-Async": "enable",
                 "Content-Type": "application/json"})
    with OPENER.open(request, timeout=30) as response:
        return json.loads(response.read())["output"]["task_id"]
'''


@pytest.fixture
def pytester(pytester):
    """A fresh project; pytest-asyncio (installed here) wants its loop scope set."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_state_is_reset_between_tests(pytester):
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(test_pytester_isolation='''
        import dashscope, os
        from helpers import create_task

        def test_a_leaves_a_task_a_frozen_clock_and_the_sdk_pointed_at_the_emulator(kf2v, dashscope_env):
            create_task(kf2v)
            kf2v.freeze()
            assert len(kf2v.tasks()) == 1

        def test_b_starts_clean(kf2v):
            assert kf2v.tasks() == []
            assert not kf2v.server.emulator.clock.frozen
            assert "DASHSCOPE_HTTP_BASE_URL" not in os.environ
            assert not dashscope.base_http_api_url.startswith("http://127.0.0.1")

        FIRST_IDS = []

        def test_c_first_task(kf2v):
            FIRST_IDS.append(create_task(kf2v))

        def test_d_first_task_id_after_a_reset(kf2v, request):
            # Random ids by default, like the real service: a reset never hands out an id again
            # (a client caching by task id sees no stale hit). With a seed, the n-th task after a
            # reset has the same id whatever ran before: ids do not depend on test order.
            seeded = request.config.getoption("--kf2v-seed") is not None
            assert (create_task(kf2v) == FIRST_IDS[0]) is seeded
    ''')
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--kf2v-seed", "3").assert_outcomes(passed=4)


def test_options_from_the_command_line_and_ini(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                      "kf2v_seed = 5\nkf2v_clock = frozen\n")
    pytester.makepyfile(test_pytester_options='''
        def test_options(kf2v, request):
            health = kf2v.admin("GET", "/_mock/health")
            assert (health["seed"], health["timing"]) == (request.config.getoption("--kf2v-seed") or 5,
                                                          request.config.getoption("--kf2v-timing") or "fast")
            assert kf2v.server.emulator.clock.frozen  # from the ini file
    ''')
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
    result = pytester.runpytest_inprocess("--kf2v-seed", "9", "--kf2v-timing", "realistic")
    result.assert_outcomes(passed=1)
    assert "kf2v-mock: timing=realistic seed=9 clock=frozen" in result.stdout.str()


def test_a_bad_option_is_a_usage_error(pytester):
    pytester.makepyfile(test_pytester_bad="def test_x(kf2v):\n    pass\n")
    result = pytester.runpytest_inprocess("--kf2v-timing", "slow")
    result.assert_outcomes(errors=1)
    assert "kf2v timing must be one of fast, realistic" in result.stdout.str()


def test_xdist_gives_each_worker_its_own_emulator(pytester, monkeypatch):
    monkeypatch.setenv("KF2V_TEST_URLS_FILE", str(pytester.path / "urls.txt"))
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(test_pytester_parallel='''
        import os, pytest
        from helpers import create_task

        @pytest.mark.parametrize("n", range(4))
        def test_own_emulator(kf2v, n):
            task_id = create_task(kf2v)
            assert [t["task_id"] for t in kf2v.tasks()] == [task_id]  # nobody else's tasks
            assert kf2v.wait_for(task_id)["status"] == "SUCCEEDED"
            with open(os.environ["KF2V_TEST_URLS_FILE"], "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + " " + kf2v.base_url() + "\\n")
    ''')
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    lines = (pytester.path / "urls.txt").read_text().split("\n")
    by_worker = {}
    for line in filter(None, lines):
        worker, url = line.split()
        by_worker.setdefault(worker, set()).add(url)
    assert set(by_worker) == {"gw0", "gw1"}
    assert all(len(urls) == 1 for urls in by_worker.values())  # one emulator per worker session
    assert by_worker["gw0"] != by_worker["gw1"]  # on different free ports


def test_the_plugin_is_registered_through_the_entry_point():
    from importlib.metadata import entry_points
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "kf2v-mock"]
    assert plugin.value == "mock_server.testing.pytest_plugin"


def test_wait_for_refuses_a_status_that_does_not_exist(kf2v):
    with pytest.raises(ValueError, match="status must be one of"):
        kf2v.wait_for("0385dc79-5ff8-4d82-bcb6-000000000000", "SUCCEED")


def test_kf2v_settings_overrides_the_servers_settings(pytester):
    pytester.makeconftest('''
        import pytest
        from mock_server.tasks.accounts import KeySpec

        @pytest.fixture(scope="session")
        def kf2v_settings():
            return {"api_keys": [KeySpec.parse("cn-beijing=sk-team-a@team")], "max_running": 5}
    ''')
    pytester.makepyfile(test_pytester_settings='''
        def test_settings(kf2v):
            assert kf2v.api_key("cn-beijing") == "sk-team-a"
            assert kf2v.server.emulator.settings.max_running == 5
    ''')
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
