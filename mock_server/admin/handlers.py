"""The emulator's own control API under ``/_mock/``: health, the virtual clock, reset, task dump,
fault rules, the request journal and the scenario list."""

from __future__ import annotations

import json

from aiohttp import web

from .. import __version__
from ..pipeline.answers import json_response
from ..pipeline.bodies import read_body
from ..pipeline.keys import EMULATOR, REGION
from ..tasks.clock import ClockError
from ..tasks.errors import DashScopeError
from ..tasks.models import Task
from ..tasks.regions import REGIONS
from ..tasks.timestamps import parse_iso, task_time
from ..traffic import scenarios
from ..traffic.faults import RuleError
from ..traffic.journal import FILTERS


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


DUMP_PAGE_MAX = 1000  # tasks per GET /_mock/tasks page (the default, and the most)


async def list_all_tasks(request: web.Request) -> web.Response:
    """Every stored task with its timeline, oldest first, a page at a time: ``?limit=N`` (at most
    1000, the default) after the cursor ``?after=<next>`` of the previous page; ``next`` is null
    on the last page."""
    emulator = request.app[EMULATOR]
    limit = _whole(request.query.get("limit"), DUMP_PAGE_MAX, "limit", 1, DUMP_PAGE_MAX)
    after = _whole(request.query.get("after"), 0, "after", 0, 2 ** 63 - 1)
    now = emulator.clock.now()
    tasks = emulator.service.dump(after, limit + 1)
    more = len(tasks) > limit
    tasks = tasks[:limit]
    return json_response({"now": now.isoformat(), "tasks": [_timeline(t, now) for t in tasks],
                          "total": emulator.service.count(),
                          "next": str(tasks[-1].sequence) if more else None})


def _whole(text: str | None, default: int, name: str, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise DashScopeError.mock(f"{name} must be a whole number from {low} to {high}")
    return value


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
    filters = {k: request.query[k] for k in FILTERS if k in request.query}
    return json_response({"requests": request.app[EMULATOR].journal.entries(**filters)})


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
