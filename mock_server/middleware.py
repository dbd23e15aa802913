"""Cross-cutting request handling.

``request_context`` (outermost): request ids, region selection, error mapping, the emulator header,
the request journal and one log line per request; it also carries out a ``disconnect`` or
``truncate`` decided further in. ``traffic`` (inside it, API and OSS routes only): in-band
scenarios, rate quotas and fault rules, before the handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiohttp import web

from . import EMULATOR_HEADER, __version__, oss_handlers, scenarios
from .accounts import bearer_key
from .appkeys import (APPLIED, EMULATOR, ERROR_CODE, FAULT_PLAN, REGION, REQUEST_ID, TASK_ID,
                      TRUNCATE)
from .errors import DashScopeError
from .faults import FaultPlan, RequestContext, error_of
from .regions import region_for_host
from .responses import read_json_body
from .urls import endpoint_of
from .views import json_response

log = logging.getLogger("kf2v_mock.requests")


class Disconnect(Exception):
    """Raised inward-out to close the connection without any answer (a ``disconnect`` fault)."""


def _region_of(request: web.Request) -> str:
    region = region_for_host(request.headers.get("Host"))
    if region is not None:
        return region.name
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if sockname else None
    return request.app[EMULATOR].region_for_port(port)


def _error_response(error: DashScopeError, request_id: str) -> web.Response:
    response = json_response(error.body(request_id), status=error.status)
    response.headers.update(error.headers)
    return response


def _as_dashscope_error(exc: Exception, request_id: str) -> DashScopeError:
    if isinstance(exc, DashScopeError):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return DashScopeError.of("payload_too_large")
    if isinstance(exc, web.HTTPNotFound):
        return DashScopeError.of("url_not_found")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return DashScopeError.of("method_not_allowed")
    if isinstance(exc, web.HTTPException):
        return DashScopeError(exc.status, "InvalidParameter", exc.reason)
    log.error("unhandled error, request_id=%s", request_id, exc_info=exc)
    return DashScopeError.of("internal_error")  # never a traceback on the wire


@web.middleware
async def request_context(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    emulator = request.app[EMULATOR]
    request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    request[REGION] = _region_of(request)
    when = emulator.clock.now()
    code = None
    disconnected = False
    try:
        response = await handler(request)
    except Disconnect:
        disconnected = True
        response = web.Response(status=499)  # never sent: the transport is gone
    except web.HTTPException as exc:
        oss_answer = oss_handlers.routing_error(request, exc)
        if oss_answer is not None:
            response = oss_answer
        else:
            error = _as_dashscope_error(exc, request_id)
            response = _error_response(error, request_id)
            code = error.code
    except Exception as exc:
        error = _as_dashscope_error(exc, request_id)
        response = _error_response(error, request_id)
        code = error.code
    response.headers[EMULATOR_HEADER] = f"kf2v-mock/{__version__}"
    response.headers.setdefault("X-Request-Id", request_id)
    if disconnected:
        if request.transport is not None:
            request.transport.abort()
    elif TRUNCATE in request:
        response = await _truncated(request, response, request[TRUNCATE])
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if not request.path.startswith("/_mock/"):
        account = emulator.keys.lookup(request.headers.get("Authorization"), request[REGION])
        emulator.journal.record({
            "method": request.method, "path": request.path, "region": request[REGION],
            "api_key_id": account.api_key_id if account is not None else None,
            "status": None if disconnected else response.status,
            "code": code or request.get(ERROR_CODE), "latency_ms": latency_ms,
            "request_id": request_id, "task_id": request.get(TASK_ID),
            "endpoint": endpoint_of(request), "time": when.isoformat(),
            "faults": list(request.get(APPLIED, [])),
        })
    if emulator.settings.log_requests:
        log.info("%s %s %s %s region=%s request_id=%s %.1fms", request.remote, request.method,
                 request.path_qs, "disconnect" if disconnected else response.status,
                 request[REGION], request_id, latency_ms)
    return response


async def _truncated(request: web.Request, response: web.StreamResponse,
                     size: int | None) -> web.StreamResponse:
    """Send the status and headers with the full Content-Length, then ``size`` bytes of the body
    (default: half), then close the connection (a ``truncate`` fault)."""
    if isinstance(response, web.FileResponse):
        path = response._path  # aiohttp keeps the served file here
        body = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
    elif isinstance(response, web.Response) and isinstance(response.body, (bytes, bytearray)):
        body = bytes(response.body)
    else:
        body = b""
    keep = len(body) // 2 if size is None else min(size, len(body))
    partial = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            partial.headers.add(name, value)
    partial.content_length = len(body)
    await partial.prepare(request)
    if request.method != "HEAD":
        await partial.write(body[:keep])
    if request.transport is not None:
        request.transport.close()
    return partial


@web.middleware
async def traffic(request: web.Request, handler) -> web.StreamResponse:
    endpoint = endpoint_of(request)
    if endpoint is None:
        return await handler(request)
    emulator = request.app[EMULATOR]
    settings = emulator.settings
    ctx = await _context(request, endpoint)
    if ctx.task_id is not None:
        request[TASK_ID] = ctx.task_id
    chosen = scenarios.Selected()
    if settings.scenarios:
        chosen = scenarios.select(request.headers.get(scenarios.HEADER), ctx.prompt, endpoint)
    applied = request[APPLIED] = [f"scenario:{name}" for name in chosen.names]
    # The gateway counts a request against its rate before anything behind it can fail.
    account = emulator.keys.lookup(request.headers.get("Authorization"), ctx.region)
    if settings.quotas and account is not None:
        emulator.quotas.admit(account, endpoint, ctx.model)
    rules = emulator.faults.select(ctx, terminal_taken=chosen.terminal is not None)
    applied += rules.rule_ids
    wait_ms = chosen.delay_ms + rules.delay_ms
    if wait_ms:
        await emulator.sleep(wait_ms / 1000)
    terminal = chosen.terminal or rules.terminal
    if terminal is not None:
        kind, action = terminal
        if kind == "error":
            raise error_of(action)
        if kind == "disconnect":
            raise Disconnect()
        request[TRUNCATE] = action["bytes"]
    request[FAULT_PLAN] = FaultPlan(emulator.faults, ctx, scenario_failure=chosen.task_failure,
                                    applied=applied)
    response = await handler(request)
    if chosen.task_rules and endpoint == "create" and response.status == 200:
        for name, rule in chosen.task_rules:
            installed = emulator.faults.add(rule, source=f"scenario:{name}",
                                            match={"task_id": request[TASK_ID]})
            applied.append(installed["id"])
    return response


async def _context(request: web.Request, endpoint: str) -> RequestContext:
    """What fault rules can match on for this request."""
    emulator = request.app[EMULATOR]
    model = prompt = task_id = None
    if endpoint == "create":
        try:
            body = await read_json_body(request)
        except DashScopeError:
            body = None  # the handler answers it
        if isinstance(body, dict):
            model = body.get("model") if isinstance(body.get("model"), str) else None
            inputs = body.get("input")
            if isinstance(inputs, dict) and isinstance(inputs.get("prompt"), str):
                prompt = inputs["prompt"]
    elif endpoint in ("query", "cancel"):
        task_id = request.match_info.get("task_id")
    elif endpoint == "list":
        task_id = request.query.get("task_id") or None
        model = request.query.get("model_name") or None
    elif endpoint == "get_policy":
        model = request.query.get("model") or None
    elif endpoint == "download":
        name = request.match_info.get("key", "").rsplit("/", 1)[-1]
        task_id = name.removesuffix(".mp4") if name.endswith(".mp4") else None
    if task_id is not None:
        task = emulator.store.get_task(task_id)
        if task is not None:
            model, prompt = model or task.spec.model, task.spec.prompt
    return RequestContext(endpoint=endpoint, region=request[REGION],
                          api_key=bearer_key(request.headers.get("Authorization")) or None,
                          model=model, prompt=prompt, task_id=task_id)
