"""Reading a request's body once: the traffic shaping reads a create's model and prompt before the
handler runs, and the handler then gets the same parsed value.

aiohttp's own decompression is off (``create_app``): a body whose ``Content-Encoding`` is a lie made
it fail inside the server, as a 500 or a plain-text 400. Bodies are decoded here instead, so a gzip
or deflate body that is not one is a DashScope ``invalid_body``, and a decoded body is held to the
same cap as a plain one (a small compressed body may not inflate past it).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

from aiohttp import web

from ..tasks.errors import DashScopeError
from .keys import EMULATOR, JSON_BODY

# Bodies with base64 images run to megabytes: from this size on they are parsed off the event loop.
OFF_LOOP_BYTES = 256 * 1024


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body, parsed once per request; ``invalid_body`` if it is not JSON."""
    if JSON_BODY not in request:
        raw = await read_body(request)
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


async def read_body(request: web.Request) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, deflate, identity; several applied in order)
    undone. Raises ``invalid_body`` for an encoding it is not, or one we do not know, and
    ``payload_too_large`` when it inflates past the body cap."""
    raw = await request.read()
    header = request.headers.get("Content-Encoding", "")
    encodings = [e for e in (part.strip().lower() for part in header.split(","))
                 if e not in ("", "identity")]
    if not encodings:
        return raw
    cap = request.app[EMULATOR].settings.max_body_bytes
    if len(raw) < OFF_LOOP_BYTES:
        return decode_body(raw, encodings, cap)
    return await asyncio.get_running_loop().run_in_executor(None, decode_body, raw, encodings, cap)


def decode_body(data: bytes, encodings: list[str], cap: int) -> bytes:
    for encoding in reversed(encodings):  # the last one listed was applied last
        if encoding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            # Meant to be zlib-wrapped; many clients send raw deflate (aiohttp accepts both too).
            wbits = zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS
        else:
            raise DashScopeError.of("invalid_body", reason=(
                f"Content-Encoding {encoding!r} is not one the emulator decodes (gzip, deflate)"))
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, cap + 1)
        except zlib.error:
            raise DashScopeError.of("invalid_body", reason=(
                f"the body is not {encoding}, as its Content-Encoding says")) from None
        if len(out) > cap:
            raise DashScopeError.of("payload_too_large", reason=(
                f"the {encoding} body inflates past the {cap}-byte cap"))
        if not inflater.eof or inflater.unused_data:  # cut short, or something after the stream
            raise DashScopeError.of("invalid_body", reason=(
                f"the {encoding} body is cut short, or followed by other bytes"))
        data = out
    return data


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
