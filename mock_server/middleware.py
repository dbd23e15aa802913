"""Cross-cutting request handling: request ids, region selection, error mapping, the emulator
header and one log line per request."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from . import EMULATOR_HEADER, __version__
from .appkeys import EMULATOR, REGION, REQUEST_ID
from .errors import DashScopeError
from .regions import region_for_host
from .views import json_response

log = logging.getLogger("kf2v_mock.requests")


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


@web.middleware
async def request_context(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    request[REGION] = _region_of(request)
    try:
        response = await handler(request)
    except DashScopeError as error:
        response = _error_response(error, request_id)
    except web.HTTPRequestEntityTooLarge:
        response = _error_response(DashScopeError.of("payload_too_large"), request_id)
    except web.HTTPNotFound:
        response = _error_response(DashScopeError.of("url_not_found"), request_id)
    except web.HTTPMethodNotAllowed:
        response = _error_response(DashScopeError.of("method_not_allowed"), request_id)
    except web.HTTPException as exc:
        response = _error_response(DashScopeError(exc.status, "InvalidParameter", exc.reason),
                                   request_id)
    except Exception:  # never a traceback on the wire
        log.exception("unhandled error, request_id=%s", request_id)
        response = _error_response(DashScopeError.of("internal_error"), request_id)
    response.headers[EMULATOR_HEADER] = f"kf2v-mock/{__version__}"
    response.headers.setdefault("X-Request-Id", request_id)
    if request.app[EMULATOR].settings.log_requests:
        log.info("%s %s %s %s region=%s request_id=%s %.1fms", request.remote, request.method,
                 request.path_qs, response.status, request[REGION], request_id,
                 (time.perf_counter() - started) * 1000)
    return response
