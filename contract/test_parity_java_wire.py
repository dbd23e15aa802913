"""The official Java SDK's requests, replayed byte for byte as raw HTTP (shared/spec/java-sdk-wire.md:
``com.alibaba:dashscope-sdk-java`` 2.22.29, source ``dashscope/dashscope-sdk-java`` @ 7be4b73), and
every field of the answers the Java SDK reads, with the type it reads it as. The Java SDK itself
passed against the emulator (the API document's ``Kf2vSync``/``Kf2vAsync`` samples); these keep what
it relies on from drifting without a JVM in CI.

Against the real service the tasks created here are canceled at once (not billed while PENDING).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from contract.targets import DOC_PROMPT

SOURCE = "java-sdk-wire.md (dashscope-sdk-java 2.22.29 @ 7be4b73)"
# Every call: these headers; GETs too carry Content-Type: application/json.
JAVA_HEADERS = {
    "user-agent": "dashscope/2.22.29; java/17.0.12; platform/Linux 6.1.0; processor/amd64",
    "Accept": "application/json; charset=utf-8",
    "Content-Type": "application/json",
}
DOC_FIRST = "https://wanx.alicdn.com/material/20250318/first_frame.png"  # the Java samples' frames
DOC_LAST = "https://wanx.alicdn.com/material/20250318/last_frame.png"
# Output fields the SDK maps onto VideoSynthesisOutput (all String), and usage fields it reads.
OUTPUT_STRINGS = ("task_id", "task_status", "code", "message", "video_url", "check_audio",
                  "orig_prompt", "actual_prompt", "submit_time", "scheduled_time", "end_time")
POLICY_STRINGS = ("upload_host", "oss_access_key_id", "signature", "policy", "upload_dir",
                  "x_oss_object_acl", "x_oss_forbid_overwrite")


def java_body(model: str, resolution: str, first: str, last: str) -> bytes:
    """The create body exactly as the SDK serialises it: extend_prompt and with_audio always
    added, nulls dropped, this key order, no spaces."""
    return (f'{{"model":"{model}","input":{{"prompt":{json.dumps(DOC_PROMPT, ensure_ascii=False)},'
            f'"extend_prompt":true,"first_frame_url":"{first}","last_frame_url":"{last}"}},'
            f'"parameters":{{"with_audio":false,"prompt_extend":true,"resolution":"{resolution}"}}}}'
            ).encode()


def java(api, method: str, path: str, **kwargs):
    return api._send(method, path, headers={**JAVA_HEADERS, **kwargs.pop("headers", {})}, **kwargs)


def java_create(api, target, first: str = DOC_FIRST, last: str = DOC_LAST, **headers):
    return java(api, "POST", "/services/aigc/image2video/video-synthesis",
                headers={"X-DashScope-Async": "enable", **headers},
                data=java_body(target.model, target.resolution, first, last))


def java_cancel(api, task_id: str):
    """Cancel as the SDK sends it: an empty body, Content-Length 0, JSON-typed."""
    return java(api, "POST", f"/tasks/{task_id}/cancel", data=b"",
                headers={"Content-Type": "application/json; charset=utf-8"})


def assert_strings(fields: dict, names) -> None:
    for name in names:
        if name in fields:
            assert isinstance(fields[name], str), (name, fields[name])


@pytest.mark.parity_documented(source=f"{SOURCE}: create body, headers, cancel with an empty body")
def test_the_java_create_then_cancel(api, target):
    """The SDK's create body byte for byte (extend_prompt, with_audio) is accepted; its cancel with
    an empty JSON-typed body answers {request_id} alone."""
    created = java_create(api, target)
    assert created.status == 200, created.body
    assert created.body["output"]["task_status"] == "PENDING"
    assert_strings(created.body["output"], OUTPUT_STRINGS)
    canceled = java_cancel(api, created.body["output"]["task_id"])
    if canceled.status != 200 and not target.is_emulator:
        pytest.skip("the real task had already started")
    assert canceled.status == 200 and set(canceled.body) == {"request_id"}  # no output: as documented


@pytest.mark.parity_documented(source=f"{SOURCE}: GET with Content-Type, list with no query")
def test_the_java_gets_and_every_field_it_reads(api, generation):
    """wait/fetch (GET with Content-Type: application/json) and list() with no query at all; every
    field the SDK reads has the type it reads it as."""
    task_id = generation[1].task_id
    fetched = java(api, "GET", f"/tasks/{task_id}")
    assert fetched.status == 200 and fetched.body["output"]["task_status"] == "SUCCEEDED"
    for answer in [*generation[1].answers, fetched.body]:
        assert_strings(answer["output"], OUTPUT_STRINGS)
    usage = fetched.body["usage"]
    assert isinstance(usage["video_count"], int) and isinstance(usage["video_duration"], int)
    for name in ("video_ratio", "SR"):  # read as String; Gson takes a JSON number for one too
        assert name not in usage or isinstance(usage[name], (str, int))
    listed = java(api, "GET", "/tasks")  # AsyncTaskListParam.builder().build(): no query
    assert listed.status == 200, listed.body
    for name in ("total", "total_page", "page_no", "page_size"):
        assert isinstance(listed.body[name], int), name
    assert listed.body["data"], "the generation is within the default 24 hours"
    for item in listed.body["data"]:  # read as Long: they must stay JSON numbers
        for name in ("gmt_create", "start_time", "end_time"):
            assert name not in item or isinstance(item[name], int), (name, item)


@pytest.mark.parity_documented(source=f"{SOURCE}: local files, one getPolicy per file in parallel")
def test_the_java_upload_flow(api, target):
    """Two files: two getPolicy calls at once (all seven fields present as strings), the SDK's
    multipart form in its field order, then a create with oss:// URLs and the resolve header."""
    import requests

    from fixtures.frames import frame_bytes

    def get_policy(_):
        return java(api, "GET", f"/uploads?action=getPolicy&model={target.model}")
    with ThreadPoolExecutor(5) as pool:
        grants = list(pool.map(get_policy, range(2)))
    urls = []
    for n, grant in enumerate(grants):
        assert grant.status == 200, grant.body
        data = grant.body["data"]
        assert all(name in data for name in POLICY_STRINGS)
        assert_strings(data, POLICY_STRINGS)
        name = f"frame{n}.png"
        fields = [("OSSAccessKeyId", data["oss_access_key_id"]), ("Signature", data["signature"]),
                  ("policy", data["policy"]), ("key", f"{data['upload_dir']}/{name}"),
                  ("x-oss-object-acl", data["x_oss_object_acl"]),
                  ("x-oss-forbid-overwrite", data["x_oss_forbid_overwrite"]),
                  ("success_action_status", "200"), ("x-oss-content-type", "image/png")]
        form = [(k, (None, v)) for k, v in fields] + [
            ("file", (name, frame_bytes(640, 480, seed=30 + n, fmt="PNG"), "image/png"))]
        sent = requests.post(data["upload_host"], files=form, timeout=60)  # no Authorization
        assert 200 <= sent.status_code < 300, sent.text  # all the SDK checks
        urls.append(f"oss://{data['upload_dir']}/{name}")
    assert grants[0].body["data"]["upload_dir"] != grants[1].body["data"]["upload_dir"]
    created = java_create(api, target, *urls, **{"X-DashScope-OssResourceResolve": "enable"})
    assert created.status == 200, created.body
    java_cancel(api, created.body["output"]["task_id"])  # not billed while PENDING


@pytest.mark.parity_documented(source=f"{SOURCE}: errors become ApiException from a JSON body")
def test_a_java_error_carries_what_api_exception_reads(api, target):
    """A non-2xx answer is JSON (Content-Type contains application/json) with code, message and
    request_id, which the SDK turns into ApiException."""
    refused = java(api, "POST", "/services/aigc/image2video/video-synthesis", key="sk-not-a-key",
                   headers={"X-DashScope-Async": "enable"},
                   data=java_body(target.model, target.resolution, DOC_FIRST, DOC_LAST))
    assert refused.status == 401
    assert "application/json" in refused.headers["Content-Type"]
    assert_strings(refused.body, ("code", "message", "request_id"))
    assert set(refused.body) == {"request_id", "code", "message"}
