"""Answers as the service writes them, in one place: the JSON bytes, the Content-Type of each
endpoint, gzip when the client accepts it, and DashScope errors as JSON. Each rule is what the real
service was recorded answering (shared/spec/real-recordings.md, differences 5-7):

- JSON is compact (``{"a":"b","c":1}``), UTF-8 (zh prompts come back as text, not ``\\u``
  escapes), keys in the order the handler built them;
- ``Content-Type``: ``application/json;charset=UTF-8`` (exactly so) on task query, cancel and list,
  plain ``application/json`` everywhere else (create, getPolicy, errors of other endpoints, the
  admin API). The aio SDK refuses a 200 that is not JSON (sdk-wire-contract §0.6); both are;
- gzip whenever the client accepts it (``Vary: Accept-Encoding``), JSON answers only: result
  videos (Range, HEAD) and OSS's XML answers stay as they are;
- ``Date`` is the virtual clock's reading, so task times (UTC+8) are 8 hours ahead of it as on
  the real service (R get-task-running), whatever the clock was moved to.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from aiohttp.web_response import ContentCoding

from ..tasks.errors import DashScopeError

PLAIN_JSON = "application/json"
TASK_JSON = "application/json;charset=UTF-8"
_CONTENT_TYPES = {"query": TASK_JSON, "cancel": TASK_JSON, "list": TASK_JSON}
# One encoder for every answer (json.dumps with options builds a new one per call): compact, and
# ensure_ascii=False like the service (zh prompts come back as UTF-8, not \u escapes).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_bytes(body: Any) -> bytes:
    text = _JSON.encode(body)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate a client sent (a fault rule): \u-escaped
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def content_type_of(endpoint: str | None) -> str:
    """The Content-Type the real service answers ``endpoint`` with (its errors too)."""
    return _CONTENT_TYPES.get(endpoint or "", PLAIN_JSON)


def json_bytes_response(data: bytes, status: int = 200, *,
                        endpoint: str | None = None) -> web.Response:
    """An answer whose JSON is already encoded (``json_bytes``), with ``json_response``'s headers."""
    return web.Response(body=data, status=status,
                        headers={"Content-Type": content_type_of(endpoint)})


def json_response(body: dict[str, Any], status: int = 200, *,
                  endpoint: str | None = None) -> web.Response:
    return web.Response(body=json_bytes(body), status=status,
                        headers={"Content-Type": content_type_of(endpoint)})


def error_response(error: DashScopeError, request_id: str,
                   endpoint: str | None = None) -> web.Response:
    response = json_response(error.body(request_id), status=error.status, endpoint=endpoint)
    response.headers.update(error.headers)
    return response


def http_date(now: datetime) -> str:
    """``now`` as an HTTP ``Date`` (whole seconds: formatted once per second of the clock)."""
    second = int(now.timestamp())
    if second != _last_date[0]:
        _last_date[:] = [second, format_datetime(now.astimezone(timezone.utc), usegmt=True)]
    return _last_date[1]


_last_date: list = [None, ""]


def compress_if_accepted(request: web.Request, response: web.StreamResponse) -> None:
    """gzip a JSON answer for a client that accepts gzip (the real gateway does, for every
    client that asks); anything else is left as it is."""
    if (type(response) is web.Response and response.content_type == PLAIN_JSON
            and isinstance(response.body, (bytes, bytearray))):
        response.headers["Vary"] = "Accept-Encoding"
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            response.enable_compression(ContentCoding.gzip)


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            try:
                return not q.startswith("q=") or float(q[2:]) > 0
            except ValueError:
                return False
    return False
