"""The reference client earns a clean card: the official SDK's own ``call()`` / ``wait()`` (1.x
sync and asyncio, and the 2.0 client's ``generate`` / ``jobs.wait``), unmodified, against the
emulator through the pytest plugin's fixtures, with the default thresholds and the documented
quotas on. The clock runs at real speed (the SDK sleeps for real), ``fast`` timing."""

from __future__ import annotations


import dashscope
import pytest
import requests
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis

from mock_server.testing.samples import frame_pair
from tests.conftest import run_sdk_aio

FIRST, LAST = frame_pair(41, (320, 240)).data_urls()
KF2V = dict(model="wan2.2-kf2v-flash", prompt="a cat turns into a dog", first_frame_url=FIRST,
            last_frame_url=LAST, resolution="480P")


def test_the_1x_sdk_call_and_wait_get_a_clean_card(kf2v, dashscope_env):
    called = VideoSynthesis.call(**KF2V, wait_timeout=60)
    assert called.output.task_status == "SUCCEEDED", called
    submitted = VideoSynthesis.async_call(**KF2V)
    waited = VideoSynthesis.wait(submitted)
    assert waited.output.task_status == "SUCCEEDED", waited

    async def aio():
        return await AioVideoSynthesis.call(**KF2V)
    assert run_sdk_aio(aio).output.task_status == "SUCCEEDED"
    video = requests.get(called.output.video_url, timeout=30, proxies={"http": None})
    assert video.status_code == 200

    card = kf2v.assert_client_ok()  # no error or warning, default thresholds
    assert card.data["summary"]["tasks"] == 3
    # wait() does not download; the two videos nobody fetched are mentioned, nothing else.
    assert card.rules() == {"result-not-downloaded"}
    assert len(card.findings) == 2 and card.rules("info") == {"result-not-downloaded"}
    polls = [r for r in kf2v.requests() if r["endpoint"] == "query"]
    assert len(polls) >= 9  # they really polled: 3 tasks, at least 3 polls each


def test_the_2x_client_generate_and_jobs_wait_get_a_clean_card(kf2v, dashscope_env):
    client = dashscope.Client(api_key=dashscope_env.api_key, base_url=dashscope_env.base_url)
    frames = {"first_frame_url": FIRST, "last_frame_url": LAST}
    generated = client.videos.generate(model="wan2.2-kf2v-flash", prompt="a cat",
                                       extra_input=frames, resolution="480P", timeout=60)
    assert generated.status == "SUCCEEDED"
    job = client.videos.jobs.create(model="wan2.2-kf2v-flash", prompt="a dog",
                                    extra_input=frames, resolution="480P")
    assert client.videos.jobs.wait(job, timeout=60).status == "SUCCEEDED"
    card = kf2v.assert_client_ok()
    assert card.rules() == {"result-not-downloaded"} and card.data["summary"]["tasks"] == 2


def test_assert_client_ok_fails_with_the_findings_and_honours_ignore(kf2v, dashscope_env):
    submitted = VideoSynthesis.async_call(**KF2V)
    VideoSynthesis.fetch(submitted)  # one look, then gone: abandoned
    with pytest.raises(AssertionError, match=r"error abandoned-task: task .*fix: Poll until"):
        kf2v.assert_client_ok()
    card = kf2v.assert_client_ok(ignore=["abandoned-task"])
    assert card.rules("error") == {"abandoned-task"} and not card.clean
    assert kf2v.report(final=False).findings == []  # just asked: still being waited on
