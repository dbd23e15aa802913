"""The request-body cap of the DashScope API (``Settings.max_body_bytes``, 64 MiB by default):
anything larger gets 413 ``BadRequest.TooLarge`` before a handler runs, whether the client declared
the length or streamed the body chunked, and whether or not the handler would read it (cancel does
not). The OSS upload host is left alone: it streams files to disk under each policy's own limit and
answers OSS's ``EntityTooLarge`` itself (oss/handlers.py ``upload``)."""

from __future__ import annotations

from aiohttp import web

from ..tasks.errors import DashScopeError
from ..tasks.regions import REGIONS
from .keys import EMULATOR

_UPLOAD_PATHS = frozenset(p for r in REGIONS.values() for p in (f"/{r.upload_bucket}",
                                                                f"/{r.upload_bucket}/"))


@web.middleware
async def body_limit(request: web.Request, handler) -> web.StreamResponse:
    if request.body_exists and request.path not in _UPLOAD_PATHS:
        cap = request.app[EMULATOR].settings.max_body_bytes
        if request.content_length is not None and request.content_length > cap:
            raise DashScopeError.of("payload_too_large", reason=(
                f"Content-Length {request.content_length} is over the {cap}-byte body cap"))
        if request.content_length is None:
            # Chunked: read it now (aiohttp's client_max_size, = the cap, stops at the cap and
            # raises 413); the handler then gets the same bytes from request.read().
            await request.read()
    return await handler(request)
