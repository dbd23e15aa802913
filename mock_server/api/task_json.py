"""JSON shapes of tasks as the real service writes them (api-facts §4.3, §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..pipeline.answers import json_bytes
from ..tasks.models import CANCELED, FAILED, RUNNING, SUCCEEDED, UNKNOWN, Task
from ..tasks.regions import REGIONS
from ..tasks.timestamps import epoch_ms, task_time

FINAL = (SUCCEEDED, FAILED, CANCELED)
# Encoded answers of tasks in a final state: they never change but for the request id (and a
# SUCCEEDED task's link, which is part of the key: it depends on where the client connected), so
# each is encoded once and served as head + request id + tail. Polls of finished tasks are most of
# a client's traffic. Bounded. The service hands out copies of a stored task, which share its spec:
# an entry holds when the spec is the same object (ids repeat after a reset) and the times agree.
_FINAL_ANSWERS: dict[tuple[str, str, str | None], tuple[Any, Any, Any, bytes, bytes]] = {}
_FINAL_ANSWERS_KEPT = 4096
_REQUEST_ID_MARK = "\x00"  # where the request id goes (JSON-escaped, it is found only there)


def task_body(task: Task | None, task_id: str, now: datetime, request_id: str,
              video_url: str | None) -> dict[str, Any]:
    """The body of ``GET /tasks/{id}``; ``task`` None (or expired) gives the UNKNOWN answer."""
    status = task.status_at(now) if task is not None else UNKNOWN
    if task is None or status == UNKNOWN:
        return {"request_id": request_id, "output": {"task_id": task_id, "task_status": UNKNOWN}}
    output: dict[str, Any] = {"task_id": task.task_id, "task_status": status,
                              "submit_time": task_time(task.submit_time)}
    # ASSUMPTION: scheduled_time appears once the task has started; end_time once it has ended.
    if status in (RUNNING, SUCCEEDED, FAILED) and task.scheduled_time is not None:
        output["scheduled_time"] = task_time(task.scheduled_time)
    if status in (SUCCEEDED, FAILED, CANCELED) and task.end_time is not None:
        output["end_time"] = task_time(task.end_time)
    body: dict[str, Any] = {"request_id": request_id, "output": output}
    if status == SUCCEEDED:
        output["video_url"] = video_url or ""
        if task.spec.prompt:
            output["orig_prompt"] = task.spec.prompt
        if task.actual_prompt:
            output["actual_prompt"] = task.actual_prompt
        model = REGIONS[task.region].models[task.spec.model]
        body["usage"] = model.usage(task.spec.resolution)
    elif status == FAILED and task.failure is not None:
        output["code"] = task.failure.code
        output["message"] = task.failure.message
    output["task_metrics"] = task_metrics(status)
    return body


def final_task_answer(task: Task, status: str, now: datetime, request_id: str,
                      video_url: str | None) -> bytes:
    """``task_body`` of ``task`` (``status`` one of ``FINAL``, as of ``now``) as JSON bytes;
    ``request_id`` must need no JSON escaping (ours never do)."""
    key = (task.task_id, status, video_url)
    kept = _FINAL_ANSWERS.get(key)
    if (kept is None or kept[0] is not task.spec or kept[1] != task.scheduled_time
            or kept[2] != task.end_time):
        encoded = json_bytes(task_body(task, task.task_id, now, _REQUEST_ID_MARK, video_url))
        head, tail = encoded.split(json_bytes(_REQUEST_ID_MARK)[1:-1], 1)
        if len(_FINAL_ANSWERS) >= _FINAL_ANSWERS_KEPT:
            del _FINAL_ANSWERS[next(iter(_FINAL_ANSWERS))]  # the oldest
        kept = _FINAL_ANSWERS[key] = (task.spec, task.scheduled_time, task.end_time, head, tail)
    return kept[3] + request_id.encode() + kept[4]


def task_metrics(status: str) -> dict[str, int]:
    """``output.task_metrics`` as recorded on the real task API (real-recordings.md difference 1:
    PENDING in the image2video family, RUNNING and SUCCEEDED on wanx-v1; FAILED as [QW-KF2V]
    documents it), last in ``output``; one video per task. ASSUMED for CANCELED: nothing succeeded
    or failed. An UNKNOWN answer has none (recorded)."""
    return {"TOTAL": 1, "SUCCEEDED": int(status == SUCCEEDED), "FAILED": int(status == FAILED)}


def list_item(task: Task, now: datetime) -> dict[str, Any]:
    """One entry of ``GET /tasks`` (api-facts §6): epoch-millisecond times, no ``output``; keys in
    alphabetical order, as the real list writes them (real-recordings.md, R ``list-task``)."""
    item: dict[str, Any] = {
        "api_key_id": task.api_key_id,
        "caller_parent_id": task.account_id,
        "caller_uid": task.account_id,
        "gmt_create": epoch_ms(task.submit_time),
        "model_name": task.spec.model,
        "region": task.region,
        "request_id": task.request_id,
        "status": task.status_at(now),
        "task_id": task.task_id,
        "user_api_unique_key": f"apikey:v1:aigc:image2video:video-synthesis:{task.spec.model}",
    }
    if task.scheduled_time is not None and now >= task.scheduled_time:
        item["start_time"] = epoch_ms(task.scheduled_time)
    if item["status"] in (SUCCEEDED, FAILED, CANCELED) and task.end_time is not None:
        item["end_time"] = epoch_ms(task.end_time)
    return dict(sorted(item.items()))


def list_body(request_id: str, total: int, page_no: int, page_size: int,
              items: list[dict[str, Any]]) -> dict[str, Any]:
    """The list answer, its top-level keys in the recorded order (R ``list-task``)."""
    return {"total": total, "data": items,
            "total_page": (total + page_size - 1) // page_size,
            "page_no": page_no, "request_id": request_id, "page_size": page_size}
