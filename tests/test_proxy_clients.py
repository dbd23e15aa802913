"""Clients that cannot change their base URL, unmodified, through the intercepting proxy: plain
``requests`` against ``https://dashscope.aliyuncs.com/api/v1``, the official SDK with no base-URL
override (1.x blocking, 1.x asyncio, the 2.0 client), each create -> poll -> download in both regions
with only the environment ``kf2v-mock run --intercept`` gives; a production script under ``kf2v-mock
run --intercept``; the pytest plugin's ``kf2v_intercept``; curl.

The clock is frozen and moved by the test (``wait_for``), so nothing here waits for real time,
except the script run as its own process (the SDK's ``call()`` polls in real time, ``fast`` timing).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import certifi
import dashscope
import pytest
import requests
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities import aio_session
from yarl import URL

from fixtures.frames import frame_bytes, frame_data_url
from mock_server.proxy.authority import CertificateAuthority
from mock_server.proxy.clients import intercept_environment
from tests.conftest import missing_component, run_sdk_aio
from tests.media_checks import assert_clip
from tests.proxy_support import (BEIJING, MODELS, PRODUCTION, RESULT_HOSTS, SINGAPORE,
                                 UPLOAD_HOSTS, proxied, proxy_server)  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
REGIONS = [BEIJING, SINGAPORE]
FIRST, LAST = frame_bytes(320, 240, seed=31), frame_bytes(320, 240, seed=32)
BASE_URL_VARIABLES = ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL")


@pytest.fixture
def intercepted_env(proxy_server, monkeypatch) -> dict[str, str]:
    """This process's environment as ``kf2v-mock run --intercept`` gives a command: the proxy and
    CA variables, and no base-URL variables (the SDK keeps its production URLs)."""
    authority = CertificateAuthority.open(Path(proxy_server.ca_file).parent)
    env = intercept_environment({}, proxy_server.proxy_url, authority)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in BASE_URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def production_sdk(monkeypatch):
    """The SDK's base URL as production code has it (1.x reads it once, at import): the default
    ``https://dashscope.aliyuncs.com/api/v1`` in Beijing, the documented international URL in
    Singapore. Restored after the test."""
    def point(region: str) -> None:
        monkeypatch.setattr(dashscope, "base_http_api_url", PRODUCTION[region])
    return point


def assert_real_looking_link(video_url: str, region: str) -> None:
    url = URL(video_url)
    assert (url.scheme, url.host, url.port) == ("https", RESULT_HOSTS[region], 443), video_url
    assert url.path.startswith("/1d/") and url.path.endswith(".mp4")
    assert set(url.query) == {"Expires", "OSSAccessKeyId", "Signature"}


# --- plain requests ------------------------------------------------------------------------------
@pytest.mark.parametrize("region", REGIONS)
def test_requests_create_poll_download_through_the_proxy(proxied, proxy_server, intercepted_env,
                                                         region):
    """Raw HTTP the documented way (getPolicy, the OSS upload form, create, query, download), with
    a plain ``requests.Session()``: the proxy and CA come from the environment only."""
    base, (model, resolution, key) = PRODUCTION[region], MODELS[region]
    session = requests.Session()
    auth = {"Authorization": f"Bearer {key}"}

    policy = session.get(f"{base}/uploads", params={"action": "getPolicy", "model": model},
                         headers=auth, timeout=30).json()["data"]
    assert policy["upload_host"] == f"https://{UPLOAD_HOSTS[region]}"
    object_key = f"{policy['upload_dir']}/first.png"
    uploaded = session.post(policy["upload_host"], timeout=30, files={"file": ("first.png", FIRST)},
                            data={"OSSAccessKeyId": policy["oss_access_key_id"],
                                  "Signature": policy["signature"], "policy": policy["policy"],
                                  "key": object_key, "success_action_status": "200",
                                  "x-oss-object-acl": policy["x_oss_object_acl"],
                                  "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"]})
    assert uploaded.status_code == 200, uploaded.text

    created = session.post(
        f"{base}/services/aigc/image2video/video-synthesis", timeout=30,
        headers={**auth, "X-DashScope-Async": "enable", "X-DashScope-OssResourceResolve": "enable"},
        json={"model": model, "parameters": {"resolution": resolution},
              "input": {"prompt": "a cat", "first_frame_url": f"oss://{object_key}",
                        "last_frame_url": frame_data_url(320, 240, seed=32)}})
    assert created.status_code == 200, created.text
    task_id = created.json()["output"]["task_id"]
    polled = session.get(f"{base}/tasks/{task_id}", headers=auth, timeout=30).json()["output"]
    assert polled["task_status"] == "PENDING"
    proxied.wait_for(task_id)
    done = session.get(f"{base}/tasks/{task_id}", headers=auth, timeout=30).json()["output"]
    assert done["task_status"] == "SUCCEEDED"
    assert_real_looking_link(done["video_url"], region)

    video = session.get(done["video_url"], timeout=30)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    assert_clip(video.content, first=FIRST, last=frame_bytes(320, 240, seed=32),
                resolution=resolution)
    ranged = session.get(done["video_url"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == video.content[:100]

    # The region's own listener answers as before: path-style links on its socket address, signed
    # alike (NO_PROXY keeps loopback direct).
    listener = session.get(f"{proxy_server.urls[region]}/tasks/{task_id}", headers=auth,
                           timeout=30).json()["output"]["video_url"]
    direct, proxied_link = URL(listener), URL(done["video_url"])
    bucket = RESULT_HOSTS[region].split(".", 1)[0]
    assert (direct.scheme, direct.host) == ("http", "127.0.0.1")
    assert direct.path == f"/{bucket}{proxied_link.path}" and direct.query == proxied_link.query
    assert [e["region"] for e in proxied.requests()] == [region] * 8


# --- the official SDK, no base URL override ------------------------------------------------------
@pytest.mark.parametrize("region", REGIONS)
def test_sdk_blocking_calls_through_the_proxy(proxied, intercepted_env, production_sdk, region,
                                              tmp_path):
    """1.x ``VideoSynthesis`` (requests): local files go through getPolicy and the upload host,
    then create, poll, download; the proxy and CA come from the environment only."""
    production_sdk(region)
    model, resolution, key = MODELS[region]
    (tmp_path / "first.png").write_bytes(FIRST)
    (tmp_path / "last.png").write_bytes(LAST)
    created = VideoSynthesis.async_call(api_key=key, model=model, prompt="a cat",
                                        first_frame_url=(tmp_path / "first.png").as_uri(),
                                        last_frame_url=(tmp_path / "last.png").as_uri(),
                                        resolution=resolution)
    assert created.status_code == 200, created
    task_id = created.output.task_id
    assert VideoSynthesis.fetch(task_id, api_key=key).output.task_status == "PENDING"
    proxied.wait_for(task_id)
    done = VideoSynthesis.fetch(task_id, api_key=key)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED", done
    assert_real_looking_link(done.output.video_url, region)
    video = requests.get(done.output.video_url, timeout=30)
    assert video.status_code == 200
    assert_clip(video.content, first=FIRST, last=LAST, resolution=resolution)
    endpoints = [(e["endpoint"], e["region"]) for e in proxied.requests()]
    # One getPolicy and one upload per file, in a thread pool: in any order.
    assert sorted(endpoints[:4]) == [("get_policy", region), ("get_policy", region),
                                     ("upload", region), ("upload", region)]
    assert endpoints[4:] == [("create", region), ("query", region), ("query", region),
                             ("download", region)]


def test_sdk_asyncio_client_uses_the_proxy_but_trusts_only_certifi(proxied, intercepted_env,
                                                                  production_sdk, monkeypatch):
    """1.x ``AioVideoSynthesis`` honours HTTPS_PROXY (its aiohttp session has ``trust_env=True``) but
    verifies against certifi's bundle only (``ssl.create_default_context(cafile=certifi.where())``),
    so SSL_CERT_FILE does not reach it: through the proxy it fails on the certificate, having sent
    nothing to the emulator."""
    import aiohttp

    production_sdk(BEIJING)
    monkeypatch.setattr(aio_session, "_shared_ssl_context", None)  # made from certifi, once
    model, resolution, key = MODELS[BEIJING]

    async def create():
        return await AioVideoSynthesis.async_call(
            api_key=key, model=model, prompt="a cat", resolution=resolution,
            first_frame_url=frame_data_url(320, 240, seed=31),
            last_frame_url=frame_data_url(320, 240, seed=32))
    with pytest.raises(aiohttp.ClientConnectorCertificateError) as refused:
        run_sdk_aio(create)
    assert "dashscope.aliyuncs.com" in str(refused.value)  # the proxy's certificate, refused
    assert proxied.requests() == []


@pytest.mark.parametrize("region", REGIONS)
def test_sdk_asyncio_client_with_the_ca_in_certifis_bundle(proxied, intercepted_env, production_sdk,
                                                           monkeypatch, tmp_path, region):
    """With the CA appended to the bundle certifi names (``cat ca.pem >> $(python -m certifi)`` in a
    throwaway environment; here a copy, named by patching ``certifi.where``), the asyncio client
    runs create -> poll -> download through the proxy."""
    import aiohttp

    bundle = tmp_path / "cacert.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + Path(intercepted_env["SSL_CERT_FILE"])
                       .read_bytes())
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    monkeypatch.setattr(aio_session, "_shared_ssl_context", None)
    production_sdk(region)
    model, resolution, key = MODELS[region]

    async def scenario():
        created = await AioVideoSynthesis.async_call(
            api_key=key, model=model, prompt="a cat", resolution=resolution,
            first_frame_url=frame_data_url(320, 240, seed=31),
            last_frame_url=frame_data_url(320, 240, seed=32))
        assert created.status_code == 200, created
        task_id = created.output.task_id
        assert (await AioVideoSynthesis.fetch(task_id, api_key=key)).output.task_status == "PENDING"
        await asyncio.get_running_loop().run_in_executor(None, proxied.wait_for, task_id)
        done = await AioVideoSynthesis.fetch(task_id, api_key=key)
        assert done.output.task_status == "SUCCEEDED", done
        # aiohttp's default context is made at import, before this test set SSL_CERT_FILE; a fresh
        # process (kf2v-mock run --intercept) needs no ssl= argument.
        trusting = ssl.create_default_context()
        async with aiohttp.ClientSession(trust_env=True) as session:  # HTTPS_PROXY
            async with session.get(done.output.video_url, ssl=trusting) as response:
                assert response.status == 200
                return done.output.video_url, await response.read()
    video_url, video = run_sdk_aio(scenario)
    assert_real_looking_link(video_url, region)
    assert_clip(video, first=FIRST, last=frame_bytes(320, 240, seed=32), resolution=resolution)


@pytest.mark.filterwarnings("ignore:no workspace configured:UserWarning")  # the SDK's advice
@pytest.mark.parametrize("region", REGIONS)
def test_sdk_v2_client_with_only_a_region(proxied, intercepted_env, region):
    """The 2.0 client (httpx, which reads HTTPS_PROXY and SSL_CERT_FILE) with no base URL: its
    region's legacy gateway, dashscope(-intl).aliyuncs.com."""
    model, resolution, key = MODELS[region]
    client = dashscope.Client(api_key=key, region=region, max_retries=0)
    job = client.videos.jobs.create(model=model, prompt="a cat", resolution=resolution,
                                    extra_input={"first_frame_url": frame_data_url(320, 240, seed=31),
                                                 "last_frame_url": frame_data_url(320, 240, seed=32)})
    assert job.status == "PENDING"
    assert client.videos.jobs.fetch(job.task_id).status == "PENDING"
    proxied.wait_for(job.task_id)
    done = client.videos.jobs.fetch(job.task_id)
    assert done.status == "SUCCEEDED"
    assert_real_looking_link(done.video_url, region)
    assert requests.get(done.video_url, timeout=30).status_code == 200


# --- kf2v-mock run --intercept, the pytest plugin, curl -----------------------------------------
def test_an_unmodified_production_script_runs_offline_under_run_intercept(tmp_path):
    """The README's recipe, as a user runs it (Beijing; the script's --intl only swaps the URL,
    and Singapore through the proxy is covered above)."""
    region = BEIJING
    (tmp_path / "first.png").write_bytes(FIRST)
    (tmp_path / "last.png").write_bytes(LAST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "KF2V_MOCK_"))}
    env["HTTPS_PROXY"] = "http://127.0.0.1:9"  # a proxy of the user's own, replaced for COMMAND
    command = [sys.executable, "-m", "mock_server", "run", "--intercept", "--quiet",
               "--region", region, "--data-dir", str(tmp_path / "data"), "--",
               sys.executable, str(REPO / "examples" / "production_client.py"),
               "first.png", "last.png", "out.mp4"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_real_looking_link(done.stdout.strip(), region)
    assert_clip((tmp_path / "out.mp4").read_bytes(), first=FIRST, last=LAST,
                resolution=MODELS[region][1])
    assert "intercepting proxy on http://127.0.0.1:" in done.stderr


def test_run_intercept_gives_the_command_the_proxy_and_ca_variables(tmp_path):
    probe = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in ["
             "'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'NO_PROXY', 'SSL_CERT_FILE', "
             "'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'NODE_USE_ENV_PROXY', "
             "'JAVA_TOOL_OPTIONS', 'DASHSCOPE_API_KEY', 'DASHSCOPE_HTTP_BASE_URL', "
             "'DASHSCOPE_BASE_URL', 'KF2V_MOCK_PROXY_URL', 'KF2V_MOCK_CA_FILE']}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "KF2V_MOCK_"))}
    env.update(NO_PROXY="internal.example", DASHSCOPE_HTTP_BASE_URL="https://dashscope-intl.aliyuncs.com/api/v1")
    done = subprocess.run([sys.executable, "-m", "mock_server", "run", "--intercept", "--quiet",
                           "--data-dir", str(tmp_path / "data"), "--", sys.executable, "-c", probe],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    proxy, ca = seen["KF2V_MOCK_PROXY_URL"], str(tmp_path / "data" / "ca" / "ca.pem")
    assert proxy.startswith("http://127.0.0.1:")
    assert seen["HTTPS_PROXY"] == seen["https_proxy"] == seen["HTTP_PROXY"] == proxy
    assert seen["NO_PROXY"] == "internal.example,127.0.0.1,localhost,::1"
    assert {seen[k] for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                              "NODE_EXTRA_CA_CERTS", "KF2V_MOCK_CA_FILE")} == {ca}
    assert seen["NODE_USE_ENV_PROXY"] == "1"
    port = proxy.rsplit(":", 1)[1]
    for option in ("-Dhttps.proxyHost=127.0.0.1", f"-Dhttps.proxyPort={port}",
                   f"-Djavax.net.ssl.trustStore={tmp_path / 'data' / 'ca' / 'truststore.p12'}",
                   "-Djavax.net.ssl.trustStorePassword=changeit"):
        assert option in seen["JAVA_TOOL_OPTIONS"].split()
    assert seen["DASHSCOPE_API_KEY"] == "sk-kf2v-mock-beijing"
    # The user's own production URL is kept (the proxy answers it); none is made up.
    assert seen["DASHSCOPE_HTTP_BASE_URL"] == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert seen["DASHSCOPE_BASE_URL"] is None


def test_the_plugin_fixture_lets_unmodified_code_call_production(pytester):
    pytester.makepyfile(test_user_code="""
        import pytest, requests
        from dashscope import VideoSynthesis

        def make_clip(first, last):   # the user's code, written for production
            rsp = VideoSynthesis.call(model="wan2.2-kf2v-flash", prompt="a cat", resolution="480P",
                                      first_frame_url=first, last_frame_url=last)
            return rsp.output.video_url, requests.get(rsp.output.video_url, timeout=30).content

        def test_it(kf2v_intercept, kf2v, kf2v_frames):
            assert kf2v_intercept.base_url == "https://dashscope.aliyuncs.com/api/v1"
            first, last = kf2v_frames.files(seed=3)
            url, video = make_clip(str(first), str(last))
            assert url.startswith("https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/")
            assert video[4:8] == b"ftyp"
            assert [t["status"] for t in kf2v.tasks()] == ["SUCCEEDED"]

        @pytest.mark.parametrize("kf2v_region", ["ap-southeast-1"])
        def test_singapore(kf2v_intercept):
            assert kf2v_intercept.base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
            got = requests.get(kf2v_intercept.base_url + "/tasks/x", timeout=30,
                               headers={"Authorization": "Bearer " + kf2v_intercept.api_key})
            assert got.json()["output"]["task_status"] == "UNKNOWN"
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_curl_through_the_proxy(proxied, proxy_server):
    curl = shutil.which("curl")
    if curl is None:
        missing_component("curl is not installed", "scripts/test installs it with apt-get as root")
    base = [curl, "-sS", "--max-time", "20", "--proxy", proxy_server.proxy_url,
            "-H", "Authorization: Bearer sk-kf2v-mock-beijing"]
    url = f"{PRODUCTION[BEIJING]}/tasks/no-such-task"
    trusted = subprocess.run([*base, "--cacert", proxy_server.ca_file, url],
                             capture_output=True, text=True, timeout=60)
    assert trusted.returncode == 0, trusted.stderr
    assert '"task_status":"UNKNOWN"' in trusted.stdout  # compact JSON, as the real service writes
    untrusted = subprocess.run([*base, url], capture_output=True, text=True, timeout=60)
    assert untrusted.returncode == 60, untrusted.stderr  # curl: peer certificate cannot be verified
    refused = subprocess.run([*base, "--cacert", proxy_server.ca_file, "https://example.com/"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 56 and "403" in refused.stderr  # the tunnel was refused
