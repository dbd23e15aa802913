"""``request_context``, the outermost middleware: request ids, region selection, error mapping,
the emulator header, the request journal and one log line per request; it also carries out a
``disconnect`` or ``truncate`` that the traffic shaping (``shaping.py``) decided further in."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from .. import EMULATOR_HEADER, __version__
from ..tasks.errors import DashScopeError
from ..tasks.regions import region_for_host
from .answers import compress_if_accepted, error_response, http_date
from .client_facts import create_facts
from .endpoints import endpoint_of
from .exchange import Exchange
from .keys import (EMULATOR, ERROR_CODE, NOTES, REGION, REQUEST_ID, SERVING, TRUNCATE,
                   values_of)
from .log_lines import request_line
from .reasons import REASON_HEADER, compose, escape_controls, header_value

if TYPE_CHECKING:
    from ..emulator import Emulator

log = logging.getLogger("kf2v_mock.requests")
_EMULATOR_TAG = f"kf2v-mock/{__version__}"


class Disconnect(Exception):
    """Raised inward-out to close the connection without any answer (a ``disconnect`` fault)."""


def _region_of(request: web.Request, emulator: "Emulator") -> str:
    region = region_for_host(request.headers.get("Host"))
    if region is not None:
        return region.name
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return emulator.region_for_port(sockname[1] if sockname else None)


def _as_dashscope_error(exc: Exception, request: web.Request, request_id: str) -> DashScopeError:
    if isinstance(exc, DashScopeError):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        cap = request.app[EMULATOR].settings.max_body_bytes
        return DashScopeError.of("payload_too_large",
                                 reason=f"the streamed body went over the {cap}-byte cap")
    if isinstance(exc, web.HTTPNotFound):
        return DashScopeError.of("url_not_found",
                                 reason=f"no route for {request.method} {request.path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return DashScopeError.of("method_not_allowed", reason=f"{request.method} is not served "
                                 f"on {request.path} (allowed: {allowed})")
    if isinstance(exc, web.HTTPException):
        return DashScopeError(exc.status, "InvalidParameter", exc.reason, reason=exc.reason)
    if isinstance(exc, web.RequestPayloadError):
        # A body that cannot be read as sent (a broken transfer or content encoding).
        return DashScopeError.of("invalid_body", reason=f"the body could not be read: {exc}")
    log.error("unhandled error, request_id=%s", request_id, exc_info=exc)
    return DashScopeError.of(  # never a traceback on the wire
        "internal_error", reason=f"unhandled {type(exc).__name__} in the emulator (see its log)")


@web.middleware
async def request_context(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    emulator = request.app[EMULATOR]
    values = values_of(request)
    values[SERVING] = emulator
    request_id = values[REQUEST_ID] = emulator.request_ids.next()
    region = values[REGION] = _region_of(request, emulator)
    when = emulator.clock.now()
    emulator.lifecycle.tick(when)  # transitions due by now are logged before this request's line
    code = refusal = None
    disconnected = False
    try:
        response = await handler(request)
    except Disconnect:
        disconnected = True
        response = web.Response(status=499)  # never sent: the transport is gone
    except ConnectionError:
        if not _client_gone(request):
            raise
        disconnected = True  # the client left mid-body: nobody to answer, nothing went wrong
        response = web.Response(status=499)
    except Exception as exc:
        error = _as_dashscope_error(exc, request, request_id)
        response = error_response(error, request_id, endpoint_of(request))
        code, refusal = error.code, error.reason
    headers = response.headers
    headers[EMULATOR_HEADER] = _EMULATOR_TAG
    if "X-Request-Id" not in headers:
        headers["X-Request-Id"] = request_id
    headers["Date"] = http_date(emulator.clock.now())
    notes = values.get(NOTES)
    reason = compose(refusal, notes) if refusal or notes else None
    if reason is not None:
        headers[REASON_HEADER] = header_value(reason)
    if disconnected and request.transport is not None:
        request.transport.abort()
    answered = response  # what the handler answered (a truncate sends only part of it)
    truncated = TRUNCATE in values
    if truncated and not disconnected:
        response = await _truncated(request, response, values[TRUNCATE])
    else:
        compress_if_accepted(request, response)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    code = code or values.get(ERROR_CODE)
    path = request.path
    # The admin API is not journaled (the console polls it), except the calls it refused.
    if not path.startswith("/_mock/") or code == "AccessDenied":
        endpoint = endpoint_of(request)
        emulator.journal.record(Exchange(
            request, answered, request_id=request_id, endpoint=endpoint,
            status=None if disconnected else response.status, code=code, latency_ms=latency_ms,
            when=when, reason=reason, truncated=truncated, keys=emulator.keys,
            # --- client facts for the report card (traffic/journal.py REPORT_FIELDS) ---
            create_facts=await create_facts(request) if endpoint == "create" else None))
    if emulator.settings.log_requests and log.isEnabledFor(logging.INFO):
        outcome = "disconnect" if disconnected else response.status
        target = request.raw_path  # as the client sent it
        if not target.isprintable():  # a log line stays one line
            target = escape_controls(target)
        line = (f"{request.remote} {request.method} {target} {outcome} region={region} "
                f"request_id={request_id} {latency_ms:.1f}ms")
        if reason is None:
            request_line(log, line, request_id=request_id, status=outcome, code=code)
        else:
            request_line(log, f"{line} {code or '-'} reason={reason}", request_id=request_id,
                         status=outcome, code=code, reason=reason)
    return response


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


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
