"""One request and its answer as the request journal keeps them (``traffic/journal.py`` has the
field names, the bounds and how bodies are shown).

Recording is cheap on purpose, since it happens on every request and reading is rare: an
``Exchange`` holds references to what the request already has (its parsed headers and URL, the
answer's headers and bytes, the parsed JSON body of a create, its faults list) plus a size
estimate, and builds the journal's dict - masked headers, decoded bodies, the client facts - the
first time the journal is read. Nothing is read that the request did not read already, a JSON body
the handler parsed is summarised from the parsed value (its base64 images replaced by a short
marker, not copied), and answer bodies are kept as the bytes that were sent.

What an entry keeps is plain strings, bytes and numbers, which the garbage collector stops
tracking: the request's headers as the client sent them in one bytes value, its target as sent
(``raw_path``), and - once the journal seals the entry, well after the answer went out - the
answer's headers in one string. A full journal that referred to aiohttp's header multidicts and
URLs instead was about 60,000 tracked objects: every collection on a busy server walked them,
stalling it for 20-130 ms."""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from ..tasks.accounts import KeyRing
from ..traffic import journal
from .client_facts import client_facts
from .keys import APPLIED, JSON_BODY, QUOTA, REGION, TASK_ID, values_of

_ENTRY_OVERHEAD = 600  # bytes: the dict and its small fields (as journal.py counts them)


class Exchange(journal.Deferred):
    __slots__ = ("_parts", "_answer_headers", "_keys")

    def __init__(self, request: web.Request, response: web.StreamResponse, *,
                 request_id: str, endpoint: str | None, status: int | None, code: str | None,
                 latency_ms: float, when: datetime, reason: str | None, truncated: bool,
                 keys: KeyRing, create_facts: dict[str, Any] | None = None):
        """``response`` is what the handler answered (a ``truncate`` sends only part of it);
        ``status`` None: the connection was dropped instead (a ``disconnect``)."""
        values = values_of(request)
        headers = response.headers
        shown: Any = None
        if isinstance(response, web.Response):
            body = response.body
            if not isinstance(body, (bytes, bytearray)):
                body = None
        else:
            body = None
            if isinstance(response, web.FileResponse):
                # Sent after the entry is made (and maybe as a Range): named, not measured.
                name = getattr(response, "_path", None)
                shown = f"<file: video/mp4, {name.name if name else 'from disk'}>"
        request_body, request_bytes, kept = _request_body(request, values)
        raw_headers = b"\r\n".join([b": ".join(pair) for pair in request.raw_headers])
        super().__init__(request_id, _ENTRY_OVERHEAD
                         + len(raw_headers)
                         + sum(map(len, chain.from_iterable(headers.items())))
                         + (len(reason) if reason else 0) + (kept or 0)
                         + (len(body) if body is not None else 0))
        # What the entry is made of, read once, as one tuple of plain values (which the collector
        # stops tracking); the rest is derived in build().
        applied = values.get(APPLIED)
        self._parts = (request.method, request.path, values[REGION], status, code, latency_ms,
                       values.get(TASK_ID), endpoint, when, tuple(applied) if applied else None,
                       reason, values.get(QUOTA), request.raw_path, request.remote, raw_headers,
                       request_body, request_bytes, body, shown,
                       response.content_length if body is None and shown is None else None,
                       truncated, create_facts)
        # The answer's headers: aiohttp adds Date, Server and Content-Length as it sends them.
        # Never the response itself, which holds on to the request and its body.
        self._answer_headers: Any = headers
        self._keys = keys

    def seal(self) -> None:
        """Keep the answer's headers as one string instead of aiohttp's multidict (complete by
        now: the journal seals an entry long after its answer was sent)."""
        headers = self._answer_headers
        if headers is not None and type(headers) is not str:
            self._answer_headers = "\r\n".join([f"{name}: {value}"
                                                 for name, value in headers.items()])

    def build(self) -> dict:
        (method, path, region, status, code, latency_ms, task_id, endpoint, when, faults, reason,
         quota, target, remote, raw_headers, request_body, request_bytes, body, shown, length,
         truncated, create) = self._parts
        response_headers = self._answer_headers
        if type(response_headers) is str:
            response_headers = CIMultiDict(_pairs(response_headers))
        # decoded as aiohttp's parser decodes them for request.headers
        request_headers = CIMultiDict(_pairs(raw_headers.decode("utf-8", "surrogateescape")))
        url = URL(target)
        authorization = request_headers.get("Authorization")
        account = self._keys.lookup(authorization, region)
        query = url.query
        if shown is not None:
            response_body: Any = shown
            response_bytes = None
        elif body is not None:
            response_body = journal.RawBody(bytes(body), _mime(response_headers)) if body else None
            response_bytes = len(body)
        else:
            response_body, response_bytes = None, length
        entry = {
            "method": method, "path": path, "region": region,
            "api_key_id": account.api_key_id if account is not None else None,
            "status": status, "code": code, "latency_ms": latency_ms,
            "request_id": self.request_id, "task_id": task_id,
            "endpoint": endpoint, "time": when.isoformat(),
            "faults": list(faults or ()),
            "reason": reason, "quota": quota, "query": url.query_string or None,
            "remote": remote,
            "request_headers": journal.headers_of(request_headers.items()),
            "request_body": request_body, "request_bytes": request_bytes,
            "response_headers": journal.headers_of(response_headers.items()),
            "response_body": response_body, "response_bytes": response_bytes,
        }
        # --- client facts for the report card (traffic/journal.py REPORT_FIELDS) ---
        entry.update(client_facts(
            endpoint, self._keys, authorization, answered=status is not None,
            truncated=truncated, response_headers=response_headers,
            response_body=bytes(body) if body is not None else None, response_status=status,
            query=query, create=create))
        self._parts = self._answer_headers = None  # type: ignore[assignment]
        return entry


def _pairs(lines: str) -> list[tuple[str, str]]:
    """Headers kept as ``Name: value`` lines (no name holds a colon, no value a line break)."""
    split = (line.partition(": ") for line in lines.split("\r\n"))
    return [(name, value) for name, _, value in split if name]


def _mime(headers: Any) -> str:
    """The media type of a Content-Type header, as aiohttp's ``content_type`` gives it."""
    value = headers.get("Content-Type")
    return value.split(";", 1)[0].strip().lower() if value else "application/octet-stream"


def _request_body(request: web.Request, values: dict) -> tuple[object, int | None, int | None]:
    """(body as kept, its size as sent, the size kept): the parsed JSON when a handler parsed it,
    the bytes when something read them, a marker for a body nobody read (an upload streamed to
    disk)."""
    parsed = values.get(JSON_BODY)
    raw = request._read_bytes  # aiohttp keeps a body that was read here; never read it ourselves
    if parsed is None and raw is None and not request.body_exists:
        return None, None, 0
    size = len(raw) if raw is not None else request.content_length
    if parsed is not None and parsed[0]:
        tally = [0]
        return journal.elide(parsed[1], tally), size, tally[0]
    if raw is not None:
        return journal.RawBody(raw, request.content_type), size, len(raw)
    return journal.marker(request.content_type, size, "not read"), size, None
