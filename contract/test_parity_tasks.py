"""A task's life as a client sees it: create, poll, download, list, cancel, fail, vanish.

Raw HTTP and the official SDK, against whichever target the suite runs on. On the real service the
shared ``generation`` fixture is the one billed generation of the raw-HTTP tests; the SDK ``call``
test is the second. Tasks created only to be canceled are canceled at once (not billed if still
PENDING).
"""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone

import pytest
import requests

from contract.recordings import TASK_METRICS, TASK_METRICS_SOURCES
from contract.targets import BEIJING, DOC_PROMPT, observe, parse_task_time

UTC8 = timezone(timedelta(hours=8))
SUCCEEDED_EXAMPLE = {BEIJING: "succeeded_flash"}  # the 2.2 example reports SR; the 2.1 one video_ratio
MP4_BRAND = b"ftyp"


@pytest.mark.parity_documented(source="api-facts §4.1 create example ([REF-NEW], [QW-KF2V])")
def test_create_answers_pending_with_a_task_id(generation, snap):
    """Create answers 200 with only task_id and task_status PENDING."""
    created, _ = generation
    assert created.status == 200
    assert created.body["output"]["task_status"] == "PENDING"
    snap.match("create", created.body, documented=("createTask", "200", "documented"))


@pytest.mark.parity_documented(
    source="[SEED]/[REF-NEW]: PENDING -> RUNNING -> SUCCEEDED, usage only for success; "
           "output.task_metrics as recorded (R get-task-image-synthesis-success, S1)",
    assumptions=["Fields per state", "Time zone of task times"])
def test_lifecycle_pending_running_succeeded(generation, snap, target):
    """A polling client sees PENDING, then RUNNING, then SUCCEEDED with a video_url and usage."""
    created, seen = generation
    assert seen.states == ["PENDING", "RUNNING", "SUCCEEDED"]
    for answer in seen.answers[:-1]:  # nothing of the result before the end
        assert "usage" not in answer and "video_url" not in answer["output"]
    final = seen.last
    assert final["output"]["task_id"] == created.body["output"]["task_id"]
    assert final["output"]["orig_prompt"] == DOC_PROMPT
    times = [parse_task_time(final["output"][k]) for k in ("submit_time", "scheduled_time", "end_time")]
    assert times == sorted(times)
    example = SUCCEEDED_EXAMPLE.get(target.region, "succeeded_plus_sdk")
    snap.match(f"succeeded-{target.region}", final, documented=("getTask", "200", example),
               recorded={"output.task_metrics": (TASK_METRICS["SUCCEEDED"],
                                                 TASK_METRICS_SOURCES["SUCCEEDED"])})


@pytest.mark.parity_documented(source="api-facts §8: the result is an MP4 behind a signed OSS link")
def test_result_link_serves_the_mp4_with_head_and_range(generation):
    """The video_url answers GET (video/mp4), HEAD (same length) and Range (206)."""
    url = generation[1].last["output"]["video_url"]
    whole = requests.get(url, timeout=120)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert whole.content[4:8] == MP4_BRAND
    head = requests.head(url, timeout=60)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(whole.content)
    part = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=60)
    assert part.status_code == 206 and part.content == whole.content[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(whole.content)}"


@pytest.mark.parity_documented(source="[TASKS] list answer; epoch-millisecond times",
                               assumptions=["List `start_time`"])
def test_list_shows_the_task_with_epoch_millisecond_times(generation, api, target):
    """GET /tasks?task_id= lists exactly that task, with its model, region and times."""
    task_id = generation[1].task_id
    listed = api.list(task_id=task_id)
    assert listed.status == 200
    assert listed.body["total"] == 1 and listed.body["page_no"] == 1
    (item,) = listed.body["data"]
    assert (item["task_id"], item["status"], item["model_name"], item["region"]) == (
        task_id, "SUCCEEDED", target.model, target.region)
    assert item["gmt_create"] <= item["start_time"] <= item["end_time"]
    # The same instant as the query's submit_time, which is written in UTC+8.
    submit = parse_task_time(generation[1].last["output"]["submit_time"]).replace(tzinfo=UTC8)
    assert abs(item["gmt_create"] - submit.timestamp() * 1000) < 1000


@pytest.mark.parity_documented(source="[SEED] Python sample: fetch/list through the SDK")
def test_sdk_fetch_and_list_read_the_task(generation, sdk, target):
    """The SDK's fetch and list parse the same task as raw HTTP returned."""
    task_id = generation[1].task_id
    fetched = sdk.VideoSynthesis.fetch(task_id, api_key=target.api_key)
    assert fetched.status_code == 200, fetched
    assert fetched.output.task_status == "SUCCEEDED"
    assert fetched.output.video_url.split("?")[0] == generation[1].last["output"]["video_url"].split("?")[0]
    assert fetched.usage.video_duration == 5 and fetched.usage.video_count == 1
    # The SDK's list takes no task_id (it would drop one): the task is among the newest.
    listed = sdk.VideoSynthesis.list(api_key=target.api_key, page_size=100)
    assert listed.status_code == 200, listed
    assert task_id in [t["task_id"] for t in listed.output["data"]]


@pytest.mark.parity_documented(source="[SEED] Python sample: VideoSynthesis.call")
def test_sdk_call_returns_a_succeeded_task(sdk, target, running_clock):
    """VideoSynthesis.call (create, then wait) returns SUCCEEDED with a downloadable video."""
    from fixtures.frames import frame_data_url
    with running_clock():
        rsp = sdk.VideoSynthesis.call(
            api_key=target.api_key, model=target.model, prompt=DOC_PROMPT,
            first_frame_url=frame_data_url(640, 480, seed=3, fmt="JPEG"),
            last_frame_url=frame_data_url(640, 480, seed=4, fmt="JPEG"),
            resolution=target.resolution, prompt_extend=False, wait_timeout=900)
    assert rsp.status_code == 200, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.output.orig_prompt == DOC_PROMPT and "actual_prompt" not in rsp.output  # no extension
    assert requests.head(rsp.output.video_url, timeout=60).status_code == 200


def _cancel_right_away(api, body=None, **create):
    """Create, cancel at once. Returns (task_id, cancel reply), or skips if the real service had
    already started the task (nothing to compare then)."""
    created = api.create(body, **create)
    assert created.status == 200, created.body
    task_id = created.body["output"]["task_id"]
    canceled = api.cancel(task_id)
    if canceled.status != 200 and not api.target.is_emulator:
        state = api.query(task_id).body["output"]["task_status"]
        assert state != "PENDING", "cancel of a PENDING task was refused"
        pytest.skip(f"the real task was already {state} when the cancel arrived")
    return task_id, canceled


@pytest.mark.parity_documented(source="[TASKS] cancel: PENDING only; UnsupportedOperation otherwise",
                               assumptions=["Fields per state"])
def test_cancel_of_a_pending_task(api, snap):
    """Cancel answers {request_id}; the task is CANCELED; a second cancel is refused."""
    task_id, canceled = _cancel_right_away(api)
    assert canceled.status == 200
    snap.match("cancel", canceled.body, documented=("cancelTask", "200", "canceled"))
    after = api.query(task_id).body
    assert after["output"]["task_status"] == "CANCELED"
    assert "usage" not in after and "video_url" not in after["output"]
    again = api.cancel(task_id)
    assert again.status == 400
    snap.match("cancel_again", again.body, documented=("cancelTask", "4XX", "not_pending"))


@pytest.mark.parity_documented(
    source="sdk-wire-contract: the 2.0 client creates on /services/aigc/video-generation/",
    assumptions=["kf2v on `/services/aigc/video-generation/video-synthesis`"])
def test_create_on_the_video_generation_path(api):
    """The path the SDK's 2.0 client uses accepts a kf2v task like the documented one."""
    task_id, canceled = _cancel_right_away(
        api, path="/services/aigc/video-generation/video-synthesis")
    assert canceled.status == 200
    assert api.query(task_id).body["output"]["task_status"] == "CANCELED"


@pytest.mark.parity_documented(source="[TASKS] cancel through the SDK")
def test_sdk_async_call_then_cancel(sdk, target, api):
    """The SDK's async_call gives a PENDING task that its cancel turns CANCELED."""
    from fixtures.frames import frame_data_url
    created = sdk.VideoSynthesis.async_call(
        api_key=target.api_key, model=target.model, prompt=DOC_PROMPT,
        first_frame_url=frame_data_url(640, 480, seed=5, fmt="JPEG"),
        last_frame_url=frame_data_url(640, 480, seed=6, fmt="JPEG"), resolution=target.resolution)
    assert created.status_code == 200 and created.output.task_status == "PENDING", created
    canceled = sdk.VideoSynthesis.cancel(created, api_key=target.api_key)
    if canceled.status_code != 200 and not target.is_emulator:
        pytest.skip("the real task had already started when the cancel arrived")
    assert canceled.status_code == 200, canceled
    fetched = sdk.VideoSynthesis.fetch(created, api_key=target.api_key)
    assert fetched.output.task_status == "CANCELED"


@pytest.mark.parity_documented(
    source="[REF-NEW] FAILED example: task_status FAILED with code and message; [QW-KF2V]: "
           "task_metrics FAILED 1",
    assumptions=["Image checks at submit vs in the task", "Image dimension limits"])
def test_images_below_the_size_limit_fail_the_task(api):
    """Frames smaller than the documented minimum are accepted, then the task FAILS."""
    created = api.create(api.body(size=(200, 150)))
    assert created.status == 200, created.body
    seen = observe(api, created.body["output"]["task_id"], "PENDING")
    assert seen.states[0] == "PENDING" and seen.states[-1] == "FAILED"
    output = seen.last["output"]
    assert output["code"] == "InvalidParameter"
    assert "usage" not in seen.last and "video_url" not in output
    assert output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 1}  # [QW-KF2V]


@pytest.mark.parity_documented(source="[REF-NEW] 任务查询过期: UNKNOWN, HTTP 200")
def test_an_unknown_task_id_answers_unknown(api, sdk, target, snap):
    """A task id the service never issued answers 200 UNKNOWN, raw and through the SDK."""
    task_id = str(uuid.uuid4())
    reply = api.query(task_id)
    assert reply.status == 200 and reply.body["output"] == {"task_id": task_id,
                                                            "task_status": "UNKNOWN"}
    snap.match("unknown", reply.body, documented=("getTask", "200", "unknown"))
    fetched = sdk.VideoSynthesis.fetch(task_id, api_key=target.api_key)
    assert fetched.status_code == 200 and fetched.output.task_status == "UNKNOWN"
