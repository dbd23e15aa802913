"""Reading a request's JSON body once: the traffic shaping reads a create's model and prompt before
the handler runs, and the handler then gets the same parsed value."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ..tasks.errors import DashScopeError
from .keys import JSON_BODY

# Bodies with base64 images run to megabytes: from this size on they are parsed off the event loop.
OFF_LOOP_BYTES = 256 * 1024


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body, parsed once per request; ``invalid_body`` if it is not JSON."""
    if JSON_BODY not in request:
        raw = await request.read()
        try:
            body = (json.loads(raw) if len(raw) < OFF_LOOP_BYTES
                    else await asyncio.get_running_loop().run_in_executor(None, json.loads, raw))
            request[JSON_BODY] = (True, body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
            request[JSON_BODY] = (False, f"the body is not JSON ({why})" if raw else
                                  "the body is empty")
    ok, body = request[JSON_BODY]
    if not ok:
        raise DashScopeError.of("invalid_body", reason=body)
    return body
