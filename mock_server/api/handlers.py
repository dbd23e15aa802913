"""HTTP handlers of the DashScope API surface: parse the request, call the domain, render JSON.
They hold no state and never build error JSON: they raise ``DashScopeError``."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from ..media.sizing import output_size
from ..pipeline.answers import json_bytes_response, json_response
from ..pipeline.bodies import read_json_body
from ..pipeline.endpoints import endpoint
from ..pipeline.keys import (EMULATOR, FAULT_PLAN, HTTP_SESSION, INTERCEPTED, REGION, REQUEST_ID,
                             TASK_ID, emulator_of, values_of)
from ..pipeline.reasons import note
from ..tasks.errors import DashScopeError, quoted
from ..tasks.models import (STATUSES, SUCCEEDED, TASK_TTL, UPLOAD_MAX_BYTES, UPLOAD_POLICY_TTL,
                            Account, Failure, Task, UploadPolicy)
from ..tasks.regions import REGIONS, Region
from ..tasks.regions import bucket_url as real_bucket_url
from ..tasks.service import ListQuery, default_list_window
from ..tasks.timestamps import parse_list_time
from .create_body import parse_create_body
from .image_intake import MAX_SIDE, MIN_SIDE, FrameImage, load_frame
from .task_json import FINAL, final_task_answer, list_body, list_item, task_body


def request_region(request: web.Request) -> Region:
    return REGIONS[request[REGION]]


def authenticate(request: web.Request) -> Account:
    return emulator_of(request).keys.authenticate(request.headers.get("Authorization"),
                                                  values_of(request)[REGION])


@lru_cache(maxsize=256)
def _is_service_host(host: str) -> bool:
    return any(region.matches_host(host) for region in REGIONS.values())


def public_origin(request: web.Request) -> str:
    """Where the client reached us, for links it will follow (result videos, upload host)."""
    host = request.host
    if _is_service_host(host):
        # The client sent a real DashScope Host header; answer with the address it connected to.
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname:
            host = f"{sockname[0]}:{sockname[1]}"
    return f"{request.scheme}://{host}"


def bucket_url(request: web.Request, bucket: str) -> str:
    """Where the client reaches ``bucket``: through the intercepting proxy, its real-looking OSS
    host (``https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com``), which the proxy serves too;
    otherwise path-style on the address the client used."""
    if values_of(request).get(INTERCEPTED):
        return real_bucket_url(bucket)
    return f"{public_origin(request)}/{bucket}"


# --- create --------------------------------------------------------------------------------------
@endpoint("create")
async def create_task(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    account = authenticate(request)
    if request.headers.get("X-DashScope-Async", "").strip().lower() != "enable":
        sent = request.headers.get("X-DashScope-Async")
        raise DashScopeError.of("sync_not_supported", reason=(
            "no X-DashScope-Async header: kf2v is asynchronous only (send X-DashScope-Async: "
            "enable)" if sent is None else f"X-DashScope-Async is {quoted(sent)}, not 'enable'"))
    region = request_region(request)
    spec = parse_create_body(await read_json_body(request), region)

    oss_header = request.headers.get("X-DashScope-OssResourceResolve", "").lower() == "enable"
    frames = await _load_frames(request, account, spec.model, oss_header,
                                [spec.first_frame_url, spec.last_frame_url])
    first, last = frames[0], frames[1]
    failure = None
    odd = [(name, f) for name, f in zip(FRAME_FIELDS, frames) if f is not None and not f.size_ok]
    if odd:
        # Dimensions are checked by the algorithm, not at submit (docs/assumptions.md).
        error = DashScopeError.of("image_too_small_or_large")
        failure = Failure(error.code, error.message, at="start")
        name, frame = odd[0]
        note(request, f"{name} is {frame.width}x{frame.height} px, outside [{MIN_SIDE}, "
                      f"{MAX_SIDE}] a side: the task is accepted and FAILS when it starts "
                      f"({error.code})")
    plan = request.get(FAULT_PLAN)
    if failure is None and plan is not None:
        failure = plan.task_failure(spec.model, spec.prompt)  # a fault rule or scenario
    # A long PENDING or RUNNING set by a fault rule, a scenario or the chaos schedule.
    timing = plan.task_timing(spec.model, spec.prompt) if plan is not None else None
    width, height = output_size(first.width, first.height, spec.resolution)
    # All or nothing: the frames are kept first (on disk with a durable store), then the task is
    # stored; if either fails, nothing is left and the create answers 500. Once both are done a
    # crash cannot lose the clip, and only then is the task acknowledged.
    synthesizer = emulator.synthesizer
    inputs = None
    if failure is None:
        inputs = await synthesizer.keep_inputs(first.data, last.data if last is not None else None)
    try:
        task = emulator.service.create(account, spec, request[REQUEST_ID], width=width,
                                       height=height, failure=failure, timing=timing,
                                       inputs=inputs.ref if inputs is not None else None)
    except BaseException:
        if inputs is not None:
            synthesizer.discard_inputs(inputs)
        raise
    request[TASK_ID] = task.task_id
    emulator.input_frames.keep(task.task_id, first, last)
    if inputs is not None:
        synthesizer.accept(task, region.result_bucket, inputs)
    # Key order as in the documented example (api-facts §4.1).
    return json_response({"output": {"task_status": "PENDING", "task_id": task.task_id},
                          "request_id": request[REQUEST_ID]}, endpoint="create")


FRAME_FIELDS = ("input.first_frame_url", "input.last_frame_url")


async def _load_frames(request: web.Request, account: Account, model: str, oss_header: bool,
                       urls: list[str | None]) -> list[FrameImage | None]:
    emulator = request.app[EMULATOR]

    async def resolve_oss(key: str) -> bytes:
        upload = emulator.store.get_upload(key)
        now = emulator.clock.now()
        # Bound to the account, region and model that asked for the policy (api-facts §9).
        why = None
        if upload is None:
            why = "no upload has this key (never uploaded, or removed 48 h after its upload)"
        elif upload.account_id != account.account_id or upload.region != account.region:
            why = "it was uploaded with another account's grant"
        elif upload.model != model:
            why = f"its upload grant was for model {upload.model}, not {model}"
        elif now >= upload.expires_at:
            why = f"it expired at {upload.expires_at.isoformat()} (48 h after its upload)"
        if why is not None:
            raise DashScopeError.of("media_download_failed",
                                    reason=f"oss://{quoted(key, 120)[1:-1]}: {why}")
        return await asyncio.get_running_loop().run_in_executor(None, Path(upload.path).read_bytes)

    async def one(field: str, url: str | None) -> FrameImage | None:
        if url is None:
            return None
        try:
            return await load_frame(url, session=request.app[HTTP_SESSION],
                                    oss_resolve_header=oss_header, resolve_oss=resolve_oss,
                                    download_timeout=emulator.settings.download_timeout,
                                    url_rules=emulator.settings.image_url_rules(),
                                    local=emulator.settings.local_urls())
        except DashScopeError as error:
            if error.reason is not None:
                error.reason = f"{field}: {error.reason}"
            raise

    results = await asyncio.gather(*(one(f, u) for f, u in zip(FRAME_FIELDS, urls)),
                                   return_exceptions=True)
    for result in results:  # the first frame's error wins, whichever finished first
        if isinstance(result, BaseException):
            raise result
    return results


# --- query, list, cancel ---------------------------------------------------------------------------
@endpoint("query")
async def get_task(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    account = authenticate(request)
    task_id = request.match_info["task_id"]
    now = emulator.clock.now()
    task = emulator.service.get(account, task_id, now)
    video_url = None
    if task is None:
        # The same words whether it never existed or is another account's (isolation).
        note(request, f"task {quoted(task_id)} is unknown to this account: never created here, "
                      "another account's, or over 24 h old")
    else:
        status = task.status_at(now)
        if status == SUCCEEDED:
            video_url = _video_url(request, task)
        if status in FINAL:
            return json_bytes_response(final_task_answer(task, status, now,
                                                         values_of(request)[REQUEST_ID],
                                                         video_url),
                                       endpoint="query")
    return json_response(task_body(task, task_id, now, request[REQUEST_ID], video_url),
                         endpoint="query")


def client_answer(request: web.Request, task: Task) -> dict:
    """The body the task's owner would get from ``GET /api/v1/tasks/{id}`` now, without faults
    (for the console; the link is signed for the origin ``request`` came in on)."""
    now = request.app[EMULATOR].clock.now()
    video_url = _video_url(request, task) if task.status_at(now) == SUCCEEDED else None
    return task_body(task, task.task_id, now, request[REQUEST_ID], video_url)


def _video_url(request: web.Request, task: Task) -> str | None:
    end = task.end_time
    if not task.video_ready or task.video_key is None or end is None:
        return None
    emulator = emulator_of(request)
    expires = int((end + TASK_TTL).timestamp())
    plan = values_of(request).get(FAULT_PLAN)
    if plan is not None and plan.expire_url():
        # An expire_url fault: the link is already past its Expires when first served.
        expires = int(emulator.clock.now().timestamp()) - 1
    bucket = REGIONS[task.region].result_bucket
    return emulator.oss.signed_url(bucket_url(request, bucket), bucket, task.video_key, expires)


@endpoint("list")
async def list_tasks(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    account = authenticate(request)
    query = _parse_list_query(request, emulator.clock.now())
    total, page = emulator.service.list(account, query)
    now = emulator.clock.now()
    return json_response(list_body(request[REQUEST_ID], total, query.page_no, query.page_size,
                                   [list_item(t, now) for t in page]), endpoint="list")


def _parse_list_query(request: web.Request, now) -> ListQuery:
    params = request.query
    default_start, default_end = default_list_window(now)
    times = {}
    for name, default in (("start_time", default_start), ("end_time", default_end)):
        try:
            times[name] = parse_list_time(params[name]) if params.get(name) else default
        except ValueError:
            raise DashScopeError.of("out_of_definition", parameter="start_time/end_time",
                                    reason=f"{name} {quoted(params[name])} is not "
                                           "YYYYMMDDhhmmss") from None
    start, end = times["start_time"], times["end_time"]
    if end < start or end - start > timedelta(hours=24):
        # api-facts §6: the range must not exceed 24 hours. ASSUMPTION: refused with this message.
        raise DashScopeError.of("out_of_definition", parameter="start_time/end_time",
                                reason="end_time is before start_time" if end < start else
                                f"the range {start:%Y%m%d%H%M%S}-{end:%Y%m%d%H%M%S} is longer "
                                "than 24 h")
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise DashScopeError.of("out_of_definition", parameter="status",
                                reason=f"status {quoted(status)} is not one of "
                                       f"{', '.join(STATUSES)}")
    page_no = _positive_int(params.get("page_no"), 1, "page_no")
    page_size = _positive_int(params.get("page_size"), 10, "page_size")
    return ListQuery(start=start, end=end, task_id=params.get("task_id") or None,
                     model_name=params.get("model_name") or None,
                     api_key_id=params.get("api_key_id") or None,
                     region=params.get("region") or None, status=status,
                     page_no=page_no, page_size=min(page_size, 100))


def _positive_int(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    reason = f"{name} {quoted(text)} is not a whole number >= 1"
    try:
        value = int(text)
    except ValueError:
        raise DashScopeError.of("out_of_definition", parameter=name, reason=reason) from None
    if value < 1:
        raise DashScopeError.of("out_of_definition", parameter=name, reason=reason)
    return value


@endpoint("cancel")
async def cancel_task(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    account = authenticate(request)
    # The aio SDK sends a JSON body with its cancel; the others send none. Never read it.
    emulator.service.cancel(account, request.match_info["task_id"])
    return json_response({"request_id": request[REQUEST_ID]}, endpoint="cancel")


# --- temporary uploads -------------------------------------------------------------------------------
# ASSUMPTION: getPolicy grants uploads for any model name the service knows; the real one answered
# for qwen-vl-plus (real-recordings.md difference 3), so names are not checked against kf2v's
# models, only for looking like a model name. The grant stays bound to the model it names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@endpoint("get_policy")
async def get_upload_policy(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    account = authenticate(request)
    if request.query.get("action") != "getPolicy":
        raise DashScopeError.of("out_of_definition", parameter="action", reason=(
            f"action is {quoted(request.query.get('action'))}, not 'getPolicy'"))
    model = request.query.get("model")
    if not model:
        raise DashScopeError.of("field_required", field="model",
                                reason="getPolicy needs ?model=<the model the file is for>")
    if not MODEL_NAME.fullmatch(model):
        raise DashScopeError.of("model_not_exist", reason=(
            f"model {quoted(model)} is not a model name (letters, digits, '.', '_', ':' and '-')"))
    now = emulator.clock.now()
    upload_dir = upload_dir_for(account, now.strftime("%Y-%m-%d"), request[REQUEST_ID])
    expires = now + UPLOAD_POLICY_TTL
    max_bytes = UPLOAD_MAX_BYTES
    bucket = request_region(request).upload_bucket
    policy, signature = emulator.oss.make_policy(upload_dir, expires, max_bytes, bucket)
    emulator.store.add_policy(UploadPolicy(upload_dir=upload_dir, account_id=account.account_id,
                                           region=account.region, model=model, expires=expires,
                                           max_bytes=max_bytes))
    # Keys in the recorded order: data first, then request_id (R get-upload-policy).
    return json_response({"data": {
        "policy": policy,
        "signature": signature,
        "upload_dir": upload_dir,
        "upload_host": bucket_url(request, bucket),
        "expire_in_seconds": int(UPLOAD_POLICY_TTL.total_seconds()),
        "max_file_size_mb": -(-max_bytes // (1024 * 1024)),  # whole MB, rounded up
        "capacity_limit_mb": 999999999,
        "oss_access_key_id": emulator.oss.access_key_id,
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }, "request_id": request[REQUEST_ID]}, endpoint="get_policy")


def upload_dir_for(account: Account, day: str, request_id: str) -> str:
    """The recorded shape: ``dashscope-instant/<32 hex, the same for one account>/<YYYY-MM-DD>/
    <request_id of the getPolicy call>`` (real-recordings.md difference 4)."""
    owner = hashlib.md5(f"{account.region}:{account.account_id}".encode()).hexdigest()
    return f"dashscope-instant/{owner}/{day}/{request_id}"
