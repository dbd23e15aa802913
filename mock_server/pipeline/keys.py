"""Typed keys for what the aiohttp application and each request carry (aiohttp's ``web.AppKey``,
``web.RequestKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp

    from ..emulator import Emulator

EMULATOR: web.AppKey["Emulator"] = web.AppKey("emulator")
# What a task's owner would get from a query right now (set by api/, shown by admin/'s console).
CLIENT_ANSWER: web.AppKey[Any] = web.AppKey("client_answer", object)
# The client session image URLs are downloaded with (api/image_fetch.py's address rules).
HTTP_SESSION: web.AppKey["aiohttp.ClientSession"] = web.AppKey("http_session")

# Per-request values the middleware sets for handlers.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
REGION: web.RequestKey[str] = web.RequestKey("region", str)
# Set by the traffic middleware for the API handlers (faults, scenarios) and the journal.
FAULT_PLAN: web.RequestKey[Any] = web.RequestKey("fault_plan", object)
TASK_ID: web.RequestKey[str] = web.RequestKey("task_id", str)
JSON_BODY: web.RequestKey[Any] = web.RequestKey("json_body", object)
TRUNCATE: web.RequestKey[Any] = web.RequestKey("truncate", object)
ERROR_CODE: web.RequestKey[str] = web.RequestKey("error_code", str)
APPLIED: web.RequestKey[list] = web.RequestKey("applied_faults", list)
# Set by the intercepting proxy (proxy/): the request reached the emulator under a real hostname,
# so the links in its answer name the real-looking OSS hosts over https (api/handlers.bucket_url).
INTERCEPTED: web.RequestKey[bool] = web.RequestKey("intercepted", bool)
# Observability (pipeline/reasons.py, the journal): notes of what acted on a request, its quota
# window's state after it was counted.
NOTES: web.RequestKey[list] = web.RequestKey("notes", list)
QUOTA: web.RequestKey[Any] = web.RequestKey("quota", object)


# The emulator serving a request, put there by ``request_context``: ``request.app[EMULATOR]`` walks
# aiohttp's match info and application mapping, and the hot path needs the emulator many times.
SERVING: web.RequestKey["Emulator"] = web.RequestKey("serving", object)


def emulator_of(request: web.BaseRequest) -> "Emulator":
    """``request.app[EMULATOR]``, cheaply once ``request_context`` has run."""
    try:
        return request._state[SERVING]
    except KeyError:
        return request.app[EMULATOR]


def values_of(request: web.BaseRequest) -> dict:
    """The values a request carries, by key, for reading keys that may be missing on the hot path:
    ``request.get(KEY)`` and ``KEY in request`` (``Mapping``'s) raise and catch a KeyError for
    every missing key, a few microseconds each."""
    return request._state
