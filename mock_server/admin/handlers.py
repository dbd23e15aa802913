"""The emulator's own control API under ``/_mock/``: health, the virtual clock, reset, task dump,
fault rules, the request journal and the scenario list."""

from __future__ import annotations

import json

from aiohttp import web

from .. import __version__
from ..pipeline.answers import json_response
from ..pipeline.bodies import read_body
from ..pipeline.keys import CLIENT_ANSWER, EMULATOR, REGION
from ..tasks.clock import ClockError
from ..tasks.errors import CATALOGUE, DashScopeError
from ..tasks.models import STATUSES, TASK_TTL, Task
from ..tasks.regions import REGIONS
from ..tasks.timestamps import parse_iso, task_time
from ..traffic import scenarios
from ..traffic.faults import RuleError
from ..traffic.journal import FilterError, elide


def _clock_body(request: web.Request) -> dict:
    clock = request.app[EMULATOR].clock
    return {"now": clock.now().isoformat(), "frozen": clock.frozen}


async def health(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    return json_response({"status": "ok", "version": __version__,
                          "region": request[REGION],
                          "regions": {str(p): r for p, r in emulator.listener_regions.items()},
                          "timing": emulator.settings.timing, "seed": emulator.settings.seed})


async def get_clock(request: web.Request) -> web.Response:
    return json_response(_clock_body(request))


async def _json(request: web.Request):
    try:
        return json.loads(await read_body(request) or b"{}")
    except (ValueError, RecursionError):
        raise DashScopeError.of("invalid_body") from None


async def post_clock(request: web.Request) -> web.Response:
    clock = request.app[EMULATOR].clock
    body = await _json(request)
    if not isinstance(body, dict) or not body:
        raise DashScopeError.mock("send advance_seconds, set or frozen")
    try:
        if "frozen" in body:
            if not isinstance(body["frozen"], bool):
                raise DashScopeError.mock("frozen must be true or false")
            clock.freeze(body["frozen"])
        if "set" in body:
            clock.set(parse_iso(str(body["set"])))
        if "advance_seconds" in body:
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise DashScopeError.mock("advance_seconds must be a number")
            clock.advance(float(seconds))
    except ClockError as exc:
        raise DashScopeError.mock(str(exc)) from None
    except ValueError:
        raise DashScopeError.mock("set must be an ISO-8601 time") from None
    return json_response(_clock_body(request))


async def reset(request: web.Request) -> web.Response:
    await request.app[EMULATOR].reset()
    return json_response({"status": "reset", **_clock_body(request)})


TASK_FILTERS = ("status", "region", "model", "api_key_id", "account_id")
DUMP_PAGE_MAX = 1000  # tasks per GET /_mock/tasks page (the default, and the most)


async def list_all_tasks(request: web.Request) -> web.Response:
    """Stored tasks with their timelines, oldest first, a page at a time: the newest ``?limit=N``
    (default and at most 1000) of those matching ``?status=&region=&model=&api_key_id=
    &account_id=``, older than the previous page's cursor ``?before=<older>``; ``older`` is null
    once nothing older matches. ``total``: the tasks stored. ``forgotten`` (first page only):
    tasks the 24 h expiry removed lately (newest last), so a console can still show what became
    of them. Without a filter a page reads only its own tasks; a filter scans them in memory."""
    emulator = request.app[EMULATOR]
    now = emulator.clock.now()
    unknown = set(request.query) - set(TASK_FILTERS) - {"limit", "before"}
    if unknown:
        raise DashScopeError.mock(f"unknown filter(s): {', '.join(sorted(unknown))}; use "
                                  f"{', '.join(TASK_FILTERS)}, limit, before")
    status = request.query.get("status")
    if status and status not in STATUSES:
        raise DashScopeError.mock(f"status must be one of {', '.join(STATUSES)}")
    limit = _whole(request.query.get("limit"), DUMP_PAGE_MAX, "limit", 0, DUMP_PAGE_MAX)
    before = _whole(request.query.get("before"), None, "before", 1, 2 ** 63 - 1)
    wanted = {k: v for k, v in request.query.items() if k in TASK_FILTERS and v}
    tasks, older = emulator.service.dump(before=before, limit=limit, **wanted)
    forgotten = []
    if before is None:
        forgotten = [t for t in (dict(_timeline(t, now), forgotten=True)
                                 for t in emulator.lifecycle.forgotten)
                     if all(t[k] == v for k, v in wanted.items())][-limit:] if limit else []
    return json_response({"now": now.isoformat(), "tasks": [_timeline(t, now) for t in tasks],
                          "forgotten": forgotten, "total": emulator.service.count(),
                          "older": None if older is None else str(older)})


def _whole(text: str | None, default: int | None, name: str, low: int, high: int) -> int | None:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:  # not a number, or one of over 4300 digits
        value = low - 1
    if not low <= value <= high:
        raise DashScopeError.mock(f"{name} must be a whole number from {low} to {high}")
    return value


def _find_task(request: web.Request) -> tuple[Task, bool]:
    """The task named in the path, and whether it is one the expiry already removed."""
    emulator = request.app[EMULATOR]
    task_id = request.match_info["task_id"]
    task = emulator.service.find(task_id)
    if task is not None:
        return task, False
    gone = next((t for t in reversed(emulator.lifecycle.forgotten) if t.task_id == task_id), None)
    if gone is None:
        raise DashScopeError(404, "NotFound", f"no task with id {task_id!r}",
                             reason="not in the store (never created, reset, or expired long ago)")
    return gone, True


async def get_task(request: web.Request) -> web.Response:
    """One task for the console: its timeline, its request, the answer its owner would get from a
    query now, and its journal entries (brief)."""
    emulator = request.app[EMULATOR]
    task, forgotten = _find_task(request)
    now = emulator.clock.now()
    spec = task.spec
    if forgotten:
        answer = {"request_id": "", "output": {"task_id": task.task_id, "task_status": "UNKNOWN"}}
    else:
        answer = request.app[CLIENT_ANSWER](request, task)
    return json_response({
        "now": now.isoformat(),
        "task": dict(_timeline(task, now), forgotten=forgotten),
        "request": elide({"model": spec.model, "input": {
            "prompt": spec.prompt, "negative_prompt": spec.negative_prompt,
            "template": spec.template, "first_frame_url": spec.first_frame_url,
            "last_frame_url": spec.last_frame_url}, "parameters": {
            "resolution": spec.resolution, "duration": spec.duration,
            "prompt_extend": spec.prompt_extend, "watermark": spec.watermark,
            "seed": spec.seed}}),
        "actual_prompt": task.actual_prompt,
        "answer": answer,
        "frames": {which: emulator.input_frames.get(task.task_id, which) is not None
                   for which in ("first", "last")},
        "video": not forgotten and _clip_path(request, task) is not None,
        "requests": emulator.journal.entries(task_id=task.task_id, brief="1"),
    })


async def get_task_frame(request: web.Request) -> web.Response:
    """An input frame as the emulator received it (kept for the console, bounded)."""
    task, _ = _find_task(request)
    which = request.match_info["which"]
    frame = request.app[EMULATOR].input_frames.get(task.task_id, which)
    if frame is None:
        raise DashScopeError(404, "NotFound", f"the {which} frame of this task is not kept",
                             reason="frames are kept in memory for the newest tasks only")
    return web.Response(body=frame.data, content_type=frame.mime,
                        headers={"Cache-Control": "private, max-age=3600"})


def _clip_path(request: web.Request, task: Task):
    if not task.video_ready or not task.video_key:
        return None
    synthesizer = request.app[EMULATOR].synthesizer
    path = synthesizer.path_for(REGIONS[task.region].result_bucket, task.video_key)
    return path if path.is_file() else None


async def get_task_video(request: web.Request) -> web.StreamResponse:
    """The task's clip, for the console (no signature, no fault rules, not journaled)."""
    task, forgotten = _find_task(request)
    path = None if forgotten else _clip_path(request, task)
    if path is None:
        raise DashScopeError(404, "NotFound", "this task has no clip (yet, or any more)",
                             reason="the clip is written once rendered and deleted at expiry")
    return web.FileResponse(path, headers={"Content-Type": "video/mp4"})


def _timeline(task: Task, now) -> dict:
    def when(value):
        return task_time(value) if value is not None else None
    return {
        "task_id": task.task_id, "region": task.region, "account_id": task.account_id,
        "api_key_id": task.api_key_id, "model": task.spec.model, "status": task.status_at(now),
        "submit_time": when(task.submit_time), "queue_wait_seconds": round(task.queue_wait, 3),
        "run_seconds": round(task.run_time, 3), "scheduled_time": when(task.scheduled_time),
        "end_time": when(task.end_time), "canceled_time": when(task.canceled_time),
        "expires_time": when(task.expires_at), "video_ready": task.video_ready,
        "width": task.width, "height": task.height, "seed": task.seed,
        "resolution": task.spec.resolution, "template": task.spec.template,
        "failure": None if task.failure is None else {
            "code": task.failure.code, "message": task.failure.message, "at": task.failure.at},
        "real_host": REGIONS[task.region].real_host,
        "link_expires_time": when(task.end_time + TASK_TTL) if task.end_time else None,
        "prompt": task.spec.prompt, "request_id": task.request_id,
    }


# --- fault rules -----------------------------------------------------------------------------------
async def add_fault(request: web.Request) -> web.Response:
    try:
        rule = request.app[EMULATOR].faults.add(await _json(request))
    except RuleError as exc:
        raise DashScopeError.mock(f"bad fault rule: {exc}") from None
    return json_response(rule)


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"faults": request.app[EMULATOR].faults.rules()})


async def fault_presets(request: web.Request) -> web.Response:
    """Ready-made rule bodies for ``POST /_mock/faults``: each named scenario's behaviour as a
    rule, then every catalogue entry as an error."""
    presets = []
    for scenario in scenarios.NAMED.values():
        if scenario.request:
            kind, spec = scenario.request[0]
            rule = {kind: spec}
        else:
            rule = dict(scenario.task[0])
        presets.append({"name": f"scenario:{scenario.name}", "description": scenario.description,
                        "rule": rule})
    presets += [{"name": f"error:{name}", "description": f"{spec.status} {spec.code}: "
                 f"{spec.message}", "rule": {"error": {"name": name}}}
                for name, spec in CATALOGUE.items()]
    return json_response({"presets": presets})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[EMULATOR].faults.clear()
    return json_response({"faults": []})


async def delete_fault(request: web.Request) -> web.Response:
    rule_id = request.match_info["rule_id"]
    faults = request.app[EMULATOR].faults
    rule = faults.get(rule_id)
    if rule is None or not faults.delete(rule_id):
        raise DashScopeError(404, "NotFound", f"no fault rule with id {rule_id!r}")
    return json_response(rule)


# --- request journal and scenarios ---------------------------------------------------------------------
async def list_requests(request: web.Request) -> web.Response:
    try:
        entries = request.app[EMULATOR].journal.entries(**dict(request.query))
    except FilterError as exc:
        raise DashScopeError.mock(str(exc)) from None
    return json_response({"requests": entries})


async def get_request(request: web.Request) -> web.Response:
    entry = request.app[EMULATOR].journal.get(request.match_info["request_id"])
    if entry is None:
        raise DashScopeError(404, "NotFound", "no journal entry with that request_id",
                             reason="never seen, or older than what the journal keeps")
    return json_response(entry)


async def clear_requests(request: web.Request) -> web.Response:
    request.app[EMULATOR].journal.clear()
    return json_response({"requests": []})


async def list_scenarios(request: web.Request) -> web.Response:
    return json_response({
        "enabled": request.app[EMULATOR].settings.scenarios,
        "header": scenarios.HEADER,
        "prompt_directive": "[mock:<name>]",
        "scenarios": scenarios.listing(),
    })
