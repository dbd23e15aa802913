"""What the real service was recorded answering, as data the parity suite compares with.

The recordings are other people's raw captures from ``dashscope.aliyuncs.com``, summarised in
shared/spec/real-recordings.md (none is of a kf2v task: they are other asynchronous models on the
same task API, so the task endpoints, getPolicy and the gateway compare directly). A test that
asserts one of these facts carries ``parity_recorded(source=...)`` naming it; PARITY.md lists those
tests as verified against a recording.
"""

from __future__ import annotations

# The sources, by the tag real-recordings.md gives them.
SOURCES = {
    "R": "cnblogs/dashscope-sdk @ 7afccbd158073a8e042aadc0a43d9995766c89e2, "
         "test/Cnblogs.DashScope.Tests.Shared/RawHttpData (raw HTTP, 2024-02 .. 2026-06)",
    "S1": "oldmanpushcart/dashscope4j @ 1e4609574efe1b1f33be9ceb52fa003e610055c4, README.md "
          "(a wanx-v1 task's debug log, 2024-02-29)",
    "S2": "a pasted real PENDING answer of an image2video/video-synthesis task (2024-03-28)",
}

# --- task answers ---------------------------------------------------------------------------------
# output.task_metrics, last in output: S2 (PENDING, image2video), R get-task-running (RUNNING),
# R get-task-image-synthesis-success and S1 (SUCCEEDED). One video per kf2v task: TOTAL 1.
TASK_METRICS_SOURCES = {"PENDING": "S2", "RUNNING": "R get-task-running",
                        "SUCCEEDED": "R get-task-image-synthesis-success; S1"}
TASK_METRICS = {
    "PENDING": {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0},
    "RUNNING": {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0},
    "SUCCEEDED": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0},
}
# S2, verbatim but for the elided ids: the only capture from kf2v's own endpoint family.
PENDING_ANSWER = {"request_id": "93e2a99f-ebe3-9bd1-…",
                  "output": {"task_id": "1e8d2c14-…", "task_status": "PENDING",
                             "submit_time": "2024-03-28 14:30:53.993",
                             "task_metrics": {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0}}}
# R get-task-running: the keys of a RUNNING answer, in order.
RUNNING_OUTPUT_KEYS = ["task_id", "task_status", "submit_time", "scheduled_time", "task_metrics"]

# --- bytes and headers ------------------------------------------------------------------------------
# R response headers: exactly these Content-Type values, per endpoint.
CONTENT_TYPES_SOURCE = ("R image-generation, get-upload-policy (create, getPolicy); get-task-running, "
                        "list-task, cancel-completed-task (query, list, cancel)")
CONTENT_TYPES = {"create": "application/json", "get_policy": "application/json",
                 "parameter_error": "application/json",
                 "query": "application/json;charset=UTF-8", "list": "application/json;charset=UTF-8",
                 "cancel": "application/json;charset=UTF-8"}
# R: every body is compact JSON; every answer is gzipped for a client that accepts gzip.
COMPACT_SOURCE = "R (every recorded body)"
GZIP_SOURCE = "R (every recorded response header: content-encoding: gzip, vary: Accept-Encoding)"

# --- the task list ------------------------------------------------------------------------------
LIST_SOURCE = "R list-task"
LIST_KEYS = ["total", "data", "total_page", "page_no", "request_id", "page_size"]
LIST_ITEM_KEYS = sorted(["api_key_id", "caller_parent_id", "caller_uid", "end_time", "gmt_create",
                         "model_name", "region", "request_id", "start_time", "status", "task_id",
                         "user_api_unique_key"])

# --- uploads ----------------------------------------------------------------------------------------
POLICY_SOURCE = "R get-upload-policy (model=qwen-vl-plus, 2025-07-12)"
POLICY_KEYS = ["policy", "signature", "upload_dir", "upload_host", "expire_in_seconds",
               "max_file_size_mb", "capacity_limit_mb", "oss_access_key_id", "x_oss_object_acl",
               "x_oss_forbid_overwrite"]
# The recorded policy document's conditions, with its values replaced by what they stand for.
POLICY_CONDITIONS = [["content-length-range", 0, "<max bytes>"],
                     ["starts-with", "$key", "<upload_dir>"],
                     {"bucket": "<upload bucket>"}, {"x-oss-object-acl": "private"},
                     {"x-oss-forbid-overwrite": "true"}]
POLICY_MODEL = "qwen-vl-plus"
# dashscope-instant/<32 hex>/<YYYY-MM-DD>/<request_id of the getPolicy call>
UPLOAD_DIR_PATTERN = r"dashscope-instant/[0-9a-f]{32}/[0-9]{4}-[0-9]{2}-[0-9]{2}/{request_id}"
