"""The official dashscope SDK (2.0.2), unmodified, against the emulator on real sockets.

The SDK is pointed at the emulator only through ``dashscope.base_http_api_url`` (or the v2 client's
``base_url``). The server's clock runs at real speed with the ``fast`` timing profile, so ``call()``
returns within a few seconds; where a test needs a state held still it freezes the server clock.
"""

from __future__ import annotations

from http import HTTPStatus

import dashscope
import pytest
import requests
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis

from fixtures.frames import frame_bytes, frame_data_url
from tests.conftest import BJ_KEY, SG_KEY, run_sdk_aio
from tests.media_checks import assert_clip

BEIJING, SINGAPORE = "cn-beijing", "ap-southeast-1"
FIRST = frame_data_url(320, 240, seed=11)
LAST = frame_data_url(320, 240, seed=12)
MODELS = {BEIJING: ("wan2.2-kf2v-flash", "480P", BJ_KEY), SINGAPORE: ("wan2.1-kf2v-plus", "720P", SG_KEY)}


@pytest.fixture(autouse=True)
def fresh(live_server, monkeypatch):
    live_server.reset()
    live_server.freeze(False)
    yield
    monkeypatch.setattr(dashscope, "base_http_api_url", dashscope.base_http_api_url)


def point_sdk_at(live_server, region, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", live_server.urls[region])


@pytest.mark.parametrize("region", [BEIJING, SINGAPORE])
def test_call_returns_a_playable_clip(live_server, monkeypatch, region):
    point_sdk_at(live_server, region, monkeypatch)
    model, resolution, key = MODELS[region]
    rsp = VideoSynthesis.call(api_key=key, model=model, prompt="a cat turns into a dog",
                              first_frame_url=FIRST, last_frame_url=LAST, resolution=resolution,
                              prompt_extend=True, seed=12345, wait_timeout=60)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.output.actual_prompt.startswith("a cat turns into a dog")
    assert rsp.usage.video_duration == 5 and rsp.usage.video_count == 1
    video = requests.get(rsp.output.video_url, timeout=30)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    assert_clip(video.content, first=frame_bytes(320, 240, seed=11),
                last=frame_bytes(320, 240, seed=12), resolution=resolution)


@pytest.mark.parametrize("region", [BEIJING, SINGAPORE])
def test_async_call_fetch_wait(live_server, monkeypatch, region):
    point_sdk_at(live_server, region, monkeypatch)
    model, resolution, key = MODELS[region]
    live_server.freeze()  # the fetch below must see the task before it ends
    created = VideoSynthesis.async_call(api_key=key, model=model, prompt="日出时分的城市天际线",
                                        first_frame_url=FIRST, last_frame_url=LAST,
                                        resolution=resolution)
    assert created.status_code == 200 and created.output.task_status == "PENDING"
    fetched = VideoSynthesis.fetch(created, api_key=key)
    assert fetched.status_code == 200
    assert fetched.output.task_id == created.output.task_id
    assert fetched.output.task_status == "PENDING"
    live_server.advance(30)
    live_server.drain()
    done = VideoSynthesis.wait(created, api_key=key)
    assert done.output.task_status == "SUCCEEDED" and done.output.video_url.startswith("http://")
    assert "画面" in done.output.actual_prompt  # a zh prompt is extended in zh


@pytest.mark.parametrize("region", [BEIJING, SINGAPORE])
def test_cancel_and_list(live_server, monkeypatch, region):
    point_sdk_at(live_server, region, monkeypatch)
    model, resolution, key = MODELS[region]
    live_server.freeze()
    created = VideoSynthesis.async_call(api_key=key, model=model, first_frame_url=FIRST,
                                        last_frame_url=LAST, resolution=resolution)
    canceled = VideoSynthesis.cancel(created, api_key=key)
    assert canceled.status_code == 200
    assert VideoSynthesis.fetch(created, api_key=key).output.task_status == "CANCELED"
    again = VideoSynthesis.cancel(created, api_key=key)
    assert (again.status_code, again.code) == (400, "UnsupportedOperation")
    listing = VideoSynthesis.list(api_key=key, status="CANCELED")
    assert listing.status_code == 200
    assert [t["task_id"] for t in listing.output["data"]] == [created.output.task_id]


def test_errors_reach_the_sdk_as_documented(live_server, monkeypatch):
    point_sdk_at(live_server, BEIJING, monkeypatch)
    rsp = VideoSynthesis.async_call(api_key=SG_KEY, model="wan2.2-kf2v-flash",
                                    first_frame_url=FIRST, last_frame_url=LAST)
    assert (rsp.status_code, rsp.code, rsp.message) == (401, "InvalidApiKey",
                                                       "Invalid API-key provided.")
    assert rsp.request_id
    rsp = VideoSynthesis.async_call(api_key=BJ_KEY, model="wan2.2-kf2v-flash",
                                    first_frame_url=FIRST, last_frame_url=LAST, duration=10)
    assert (rsp.status_code, rsp.code) == (400, "InvalidParameter")
    unknown = VideoSynthesis.fetch("0385dc79-5ff8-4d82-bcb6-000000000000", api_key=BJ_KEY)
    assert unknown.status_code == 200 and unknown.output.task_status == "UNKNOWN"


@pytest.mark.parametrize("region", [BEIJING, SINGAPORE])
def test_aio_stack(live_server, monkeypatch, region):
    point_sdk_at(live_server, region, monkeypatch)
    model, resolution, key = MODELS[region]

    async def scenario():
        rsp = await AioVideoSynthesis.call(api_key=key, model=model, prompt="p",
                                           first_frame_url=FIRST, last_frame_url=LAST,
                                           resolution=resolution, prompt_extend=True)
        assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
        live_server.freeze()  # hold the next task in PENDING
        created = await AioVideoSynthesis.async_call(api_key=key, model=model,
                                                     first_frame_url=FIRST, last_frame_url=LAST,
                                                     resolution=resolution)
        fetched = await AioVideoSynthesis.fetch(created, api_key=key)
        assert fetched.output.task_status in ("PENDING", "RUNNING")
        canceled = await AioVideoSynthesis.cancel(created, api_key=key)
        assert canceled.status_code == 200
        waited = await AioVideoSynthesis.wait(created, api_key=key)
        assert waited.output.task_status == "CANCELED"
        listing = await AioVideoSynthesis.list(api_key=key)
        assert listing.status_code == 200 and listing.output["total"] == 2

    run_sdk_aio(scenario)


def test_v2_client_jobs(live_server):
    client = dashscope.Client(api_key=BJ_KEY, base_url=live_server.urls[BEIJING], max_retries=0)
    job = client.videos.jobs.create(model="wan2.2-kf2v-flash", prompt="p",
                                    extra_input={"first_frame_url": FIRST, "last_frame_url": LAST},
                                    resolution="480P", prompt_extend=True)
    assert job.status == "PENDING"
    live_server.advance(30)
    live_server.drain()
    done = client.videos.jobs.wait(job.task_id)
    assert done.status == "SUCCEEDED" and done.output["video_url"].startswith("http://")


def test_local_files_go_through_the_upload_flow(live_server, monkeypatch, tmp_path):
    point_sdk_at(live_server, BEIJING, monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "first.png").write_bytes(frame_bytes(320, 240, seed=21))
    (tmp_path / "last.jpg").write_bytes(frame_bytes(320, 240, seed=22, fmt="JPEG"))
    rsp = VideoSynthesis.call(api_key=BJ_KEY, model="wan2.2-kf2v-flash", prompt="p",
                              first_frame_url="file://./first.png", last_frame_url="last.jpg",
                              resolution="480P", wait_timeout=60)
    assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
    video = requests.get(rsp.output.video_url, timeout=30).content
    assert_clip(video, first=frame_bytes(320, 240, seed=21),
                last=frame_bytes(320, 240, seed=22, fmt="JPEG"), resolution="480P")


@pytest.fixture
def image_host(tmp_path):
    """A plain local HTTP server standing in for the public image URLs of the documented sample."""
    import functools
    import http.server
    import threading

    (tmp_path / "first_frame.png").write_bytes(frame_bytes(400, 300, seed=31))
    (tmp_path / "last_frame.jpg").write_bytes(frame_bytes(400, 300, seed=32, fmt="JPEG"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_documented_sample_with_image_urls(live_server, monkeypatch, image_host):
    """The API reference's sync sample, with its public image URLs served locally."""
    point_sdk_at(live_server, BEIJING, monkeypatch)
    rsp = VideoSynthesis.call(api_key=BJ_KEY, model="wanx2.1-kf2v-plus",
                              prompt="写实风格，一只黑色小猫好奇地看向天空，镜头从平视逐渐上升，最后俯拍小猫好奇的眼神。",
                              first_frame_url=f"{image_host}/first_frame.png",
                              last_frame_url=f"{image_host}/last_frame.jpg",
                              resolution="720P", prompt_extend=True, wait_timeout=60)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.usage.video_ratio == "standard"
    video = requests.get(rsp.output.video_url, timeout=30).content
    assert_clip(video, first=frame_bytes(400, 300, seed=31),
                last=frame_bytes(400, 300, seed=32, fmt="JPEG"), resolution="720P")
    missing = VideoSynthesis.async_call(api_key=BJ_KEY, model="wanx2.1-kf2v-plus",
                                        first_frame_url=f"{image_host}/nope.png",
                                        last_frame_url=f"{image_host}/last_frame.jpg")
    assert (missing.status_code, missing.code) == (400, "InvalidParameter.DataInspection")


def _sdk_environment(live_server, region: str, key: str) -> dict[str, str]:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env.update(DASHSCOPE_HTTP_BASE_URL=live_server.urls[region], DASHSCOPE_API_KEY=key,
               NO_PROXY="127.0.0.1,localhost")
    return env


def test_environment_variables_alone_point_unmodified_code_at_the_emulator(live_server, tmp_path):
    """1.x reads DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY at import time: no code change."""
    import subprocess
    import sys

    script = tmp_path / "client.py"
    script.write_text(
        "from dashscope import VideoSynthesis\n"
        f"rsp = VideoSynthesis.call(model='wan2.1-kf2v-plus', prompt='p', first_frame_url={FIRST!r},"
        f" last_frame_url={LAST!r})\n"
        "print(rsp.status_code, rsp.output.task_status, rsp.output.video_url)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=_sdk_environment(live_server, SINGAPORE, SG_KEY), cwd=tmp_path)
    status, task_status, url = done.stdout.split()
    assert (status, task_status) == ("200", "SUCCEEDED"), done.stderr
    assert url.startswith(live_server.urls[SINGAPORE].removesuffix("/api/v1") + "/dashscope-result-sg/")


def test_dashscope_cli_create_and_fetch(live_server, tmp_path):
    """The SDK's own ``dashscope video-synthesis`` command (sdk-wire-contract §7)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).with_name("dashscope"))  # installed beside this interpreter
    env = _sdk_environment(live_server, BEIJING, BJ_KEY)
    created = subprocess.run(
        [cli, "video-synthesis", "create", "-m", "wan2.2-kf2v-flash", "-p", "a cat",
         "--first-frame-url", FIRST, "--last-frame-url", LAST, "--resolution", "480P",
         "--no-prompt-extend"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert '"task_status": "SUCCEEDED"' in created.stdout, created.stdout
    task_id = re.search(r'"task_id": "([^"]+)"', created.stdout).group(1)
    fetched = subprocess.run([cli, "video-synthesis", "fetch", task_id], capture_output=True,
                             text=True, timeout=60, env=env, cwd=tmp_path)
    assert fetched.returncode == 0 and "SUCCEEDED" in fetched.stdout, fetched.stderr
