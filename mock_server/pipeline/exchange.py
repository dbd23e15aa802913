"""One request and its answer as the request journal keeps them (``traffic/journal.py`` has the
field names, the bounds and how bodies are shown).

Recording is cheap on purpose: nothing is read that the request did not read already, a JSON
body the handler parsed is summarised from the parsed value (its base64 images are replaced by a
short marker, not copied), and answer bodies are kept as the bytes that were sent (decoded only
when someone reads the journal)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from ..traffic import journal
from .endpoints import endpoint_of
from .keys import APPLIED, EMULATOR, JSON_BODY, QUOTA, REGION, REQUEST_ID, TASK_ID


def exchange_entry(request: web.Request, response: web.StreamResponse, *, status: int | None,
                   code: str | None, latency_ms: float, when: datetime,
                   reason: str | None) -> tuple[dict, int | None]:
    """The journal's entry for one exchange (field names: ``journal.FIELDS``), and the size its
    request body keeps (for the journal's byte bound)."""
    emulator = request.app[EMULATOR]
    account = emulator.keys.lookup(request.headers.get("Authorization"), request[REGION])
    request_body, request_bytes, kept = _request_body(request)
    response_body, response_bytes = _response_body(response)
    return {
        "method": request.method, "path": request.path, "region": request[REGION],
        "api_key_id": account.api_key_id if account is not None else None,
        "status": status, "code": code, "latency_ms": latency_ms,
        "request_id": request[REQUEST_ID], "task_id": request.get(TASK_ID),
        "endpoint": endpoint_of(request), "time": when.isoformat(),
        "faults": list(request.get(APPLIED, [])),
        "reason": reason, "quota": request.get(QUOTA), "query": request.query_string or None,
        "remote": request.remote,
        "request_headers": journal.headers_of(request.headers.items()),
        "request_body": request_body, "request_bytes": request_bytes,
        "response_headers": journal.headers_of(response.headers.items()),
        "response_body": response_body, "response_bytes": response_bytes,
    }, kept


def _request_body(request: web.Request) -> tuple[object, int | None, int | None]:
    """(body as kept, its size as sent, the size kept): the parsed JSON when a handler parsed it,
    the bytes when something read them, a marker for a body nobody read (an upload streamed to
    disk)."""
    parsed = request.get(JSON_BODY)
    raw = request._read_bytes  # aiohttp keeps a body that was read here; never read it ourselves
    size = len(raw) if raw is not None else request.content_length
    if parsed is not None and parsed[0]:
        tally = [0]
        return journal.elide(parsed[1], tally), size, tally[0]
    if raw is not None:
        return journal.RawBody(raw, request.content_type), size, len(raw)
    if request.body_exists:
        return journal.marker(request.content_type, size, "not read"), size, None
    return None, None, 0


def _response_body(response: web.StreamResponse) -> tuple[object, int | None]:
    if isinstance(response, web.FileResponse):
        # Sent after this runs (and maybe as a Range): named, not measured (no disk IO here).
        name = getattr(response, "_path", None)
        return f"<file: video/mp4, {name.name if name else 'from disk'}>", None
    body = getattr(response, "body", None)
    if isinstance(body, (bytes, bytearray)):
        if not body:
            return None, 0
        return journal.RawBody(bytes(body), response.content_type), len(body)
    return None, response.content_length
