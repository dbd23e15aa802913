"""The rows of shared/spec/real-recordings.md: what the real service was recorded answering on the
task API kf2v shares with other models (contract/recordings.py holds the facts and their sources).

Against the real service these cost nothing beyond the shared ``generation``: every other task is
canceled while PENDING (not billed), and refused requests create nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest

from contract import recordings as rec
from contract.targets import parse_task_time

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def created_then_canceled(api):
    """A task created and canceled at once; (create reply, query reply while PENDING). Skips on
    the real service if the task had already started (nothing to compare then)."""
    created = api.create()
    assert created.status == 200, created.body
    task_id = created.body["output"]["task_id"]
    pending = api.query(task_id)
    canceled = api.cancel(task_id)
    if pending.body["output"]["task_status"] != "PENDING" and not api.target.is_emulator:
        pytest.skip("the real task had already started")
    assert canceled.status == 200, canceled.body
    return created, pending, canceled


# --- task answers --------------------------------------------------------------------------------
@pytest.mark.parity_recorded(source="S2: a real PENDING answer of image2video/video-synthesis")
def test_a_pending_answer_is_shaped_as_recorded(api):
    """A PENDING answer: request_id, then output with task_id, task_status, submit_time and
    task_metrics {TOTAL 1, SUCCEEDED 0, FAILED 0}, in that order."""
    _, pending, _ = created_then_canceled(api)
    assert list(pending.body) == list(rec.PENDING_ANSWER)
    assert list(pending.body["output"]) == list(rec.PENDING_ANSWER["output"])
    assert pending.body["output"]["task_metrics"] == rec.PENDING_ANSWER["output"]["task_metrics"]


@pytest.mark.parity_recorded(source="R get-task-running")
def test_a_running_answer_is_shaped_as_recorded(generation):
    """A RUNNING answer's output: task_id, task_status, submit_time, scheduled_time, task_metrics."""
    running = [a for a in generation[1].answers if a["output"]["task_status"] == "RUNNING"]
    assert running
    for answer in running:
        assert list(answer["output"]) == rec.RUNNING_OUTPUT_KEYS
        assert answer["output"]["task_metrics"] == rec.TASK_METRICS["RUNNING"]


@pytest.mark.parity_recorded(source="R get-task-image-synthesis-success; S1")
def test_a_succeeded_answer_counts_its_video_last_in_output(generation):
    """SUCCEEDED: request_id, output (task_metrics last, SUCCEEDED 1), usage."""
    final = generation[1].last
    assert list(final) == ["request_id", "output", "usage"]
    assert list(final["output"])[-1] == "task_metrics"
    assert final["output"]["task_metrics"] == rec.TASK_METRICS["SUCCEEDED"]


@pytest.mark.parity_recorded(source="R get-task-unknown")
def test_an_unknown_id_answers_exactly_as_recorded(api):
    """An unknown id: 200, request_id then output {task_id, task_status UNKNOWN}, no metrics."""
    reply = api.query("1111")
    assert reply.status == 200
    assert reply.raw == json.dumps(
        {"request_id": reply.body["request_id"], "output": {"task_id": "1111", "task_status": "UNKNOWN"}},
        separators=(",", ":")).encode()


@pytest.mark.parity_recorded(source="R image-synthesis-nosse and three more creates")
def test_create_answers_output_first(generation):
    """Create: {"output":{"task_status":"PENDING","task_id":…},"request_id":…}, keys in that order."""
    created = generation[0]
    assert list(created.body) == ["output", "request_id"]
    assert list(created.body["output"]) == ["task_status", "task_id"]


@pytest.mark.parity_recorded(source="R: task ids are uuid4 (real-recordings.md difference 2)")
def test_task_ids_are_distinct_uuid4s(api, generation):
    """Every task id is a version-4 UUID, and no two are the same."""
    created, _, _ = created_then_canceled(api)
    ids = [generation[0].body["output"]["task_id"], created.body["output"]["task_id"]]
    assert all(UUID4.match(task_id) for task_id in ids) and ids[0] != ids[1]


@pytest.mark.parity_recorded(source="R get-task-running: submit_time vs the Date header")
def test_task_times_are_8_hours_ahead_of_the_date_header(api):
    """Task times are service-local (UTC+8): submit_time is the Date of the create answer + 8 h."""
    created, pending, _ = created_then_canceled(api)
    sent = parsedate_to_datetime(created.headers["Date"]).replace(tzinfo=None)
    submitted = parse_task_time(pending.body["output"]["submit_time"])
    assert abs(submitted - sent - timedelta(hours=8)) < timedelta(seconds=3)


@pytest.mark.parity_recorded(source="R cancel-completed-task")
def test_cancel_of_a_finished_task(api, generation):
    """400 UnsupportedOperation "Failed to cancel the task, please confirm if the task is in
    PENDING status.", request_id first."""
    reply = api.cancel(generation[1].task_id)
    assert reply.status == 400
    assert list(reply.body) == ["request_id", "code", "message"]
    assert (reply.body["code"], reply.body["message"]) == (
        "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status.")


@pytest.mark.parity_recorded(source="R auth-error")
def test_a_bad_key_is_refused_with_the_request_id_in_a_header(api):
    """401 InvalidApiKey "Invalid API-key provided.", and X-Request-ID = the body's request_id."""
    reply = api.query("1111", key="sk-kf2v-contract-not-a-key")
    assert reply.status == 401
    assert list(reply.body) == ["request_id", "code", "message"]
    assert (reply.body["code"], reply.body["message"]) == ("InvalidApiKey", "Invalid API-key provided.")
    assert reply.headers["X-Request-ID"] == reply.body["request_id"]


# --- bytes and headers ----------------------------------------------------------------------------
@pytest.mark.parity_recorded(source=rec.CONTENT_TYPES_SOURCE)
def test_the_content_type_of_each_endpoint(api, target, generation):
    """application/json on create, getPolicy and parameter errors; application/json;charset=UTF-8
    (exactly) on query, list and cancel, their errors included."""
    created, pending, canceled = created_then_canceled(api)
    bad_body = api.create(raw=b"{not json")
    seen = {
        "create": created, "parameter_error": bad_body, "query": pending, "cancel": canceled,
        "list": api.list(task_id=generation[1].task_id), "get_policy": api.get_policy(target.model),
    }
    for endpoint, reply in seen.items():
        assert reply.headers["Content-Type"] == rec.CONTENT_TYPES[endpoint], endpoint
    refused = api.cancel(generation[1].task_id)  # an error of a task endpoint
    assert refused.status == 400 and refused.headers["Content-Type"] == rec.CONTENT_TYPES["cancel"]


@pytest.mark.parity_recorded(source=rec.COMPACT_SOURCE)
def test_json_bodies_are_compact(api, target, generation):
    """Every JSON body is written without spaces: {"a":"b","c":1}."""
    replies = [api.query(generation[1].task_id), api.list(task_id=generation[1].task_id),
               api.get_policy(target.model), api.query("1111"), api.create(raw=b"{not json")]
    for reply in replies:
        assert reply.raw == json.dumps(json.loads(reply.raw), ensure_ascii=False,
                                       separators=(",", ":")).encode(), reply.raw[:200]


@pytest.mark.parity_recorded(source=rec.GZIP_SOURCE)
def test_answers_are_gzipped_when_the_client_accepts_gzip(target):
    """With Accept-Encoding: gzip the answer is gzipped (Vary: Accept-Encoding); without, not."""
    url = f"{target.base_url}/tasks/1111"
    auth = {"Authorization": f"Bearer {target.api_key}"}
    zipped = target.session.get(url, headers={**auth, "Accept-Encoding": "gzip"}, stream=True,
                                timeout=60)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    body = json.loads(gzip.decompress(zipped.raw.read(decode_content=False)))
    assert body["output"] == {"task_id": "1111", "task_status": "UNKNOWN"}
    plain = target.session.get(url, headers={**auth, "Accept-Encoding": "identity"}, timeout=60)
    assert "Content-Encoding" not in plain.headers and plain.json()["output"]["task_id"] == "1111"


# --- list and uploads -------------------------------------------------------------------------------
@pytest.mark.parity_recorded(source=rec.LIST_SOURCE)
def test_the_list_is_shaped_as_recorded(api, generation):
    """Top-level keys total, data, total_page, page_no, request_id, page_size; each item's 12 keys
    in alphabetical order, times as epoch-ms numbers, request_id the create's."""
    created, seen = generation
    listed = api.list(task_id=seen.task_id)
    assert list(listed.body) == rec.LIST_KEYS
    (item,) = listed.body["data"]
    assert list(item) == rec.LIST_ITEM_KEYS
    assert all(isinstance(item[k], int) for k in ("gmt_create", "start_time", "end_time"))
    assert item["request_id"] == created.body["request_id"]


@pytest.mark.parity_recorded(source=rec.POLICY_SOURCE)
def test_get_policy_for_a_model_kf2v_does_not_serve(api):
    """getPolicy answers for qwen-vl-plus too: {"data":{10 fields},"request_id"}, the policy's
    five conditions in order, upload_dir = dashscope-instant/<32 hex>/<day>/<its request_id>."""
    reply = api.get_policy(rec.POLICY_MODEL)
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["data", "request_id"]
    data = reply.body["data"]
    assert list(data) == rec.POLICY_KEYS
    assert all(isinstance(data[k], int) for k in ("expire_in_seconds", "max_file_size_mb",
                                                  "capacity_limit_mb"))
    pattern = rec.UPLOAD_DIR_PATTERN.replace("{request_id}", re.escape(reply.body["request_id"]))
    assert re.fullmatch(pattern, data["upload_dir"]), data["upload_dir"]
    document = json.loads(base64.b64decode(data["policy"]))
    assert list(document) == ["expiration", "conditions"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["expiration"])
    conditions = document["conditions"]
    length, key, bucket, acl, overwrite = conditions
    assert length[:2] == ["content-length-range", 0] and length[2] == data["max_file_size_mb"] * 2**20
    assert key == ["starts-with", "$key", data["upload_dir"]]
    assert list(bucket) == ["bucket"] and bucket["bucket"] in data["upload_host"]
    assert [acl, overwrite] == rec.POLICY_CONDITIONS[3:]

