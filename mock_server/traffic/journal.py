"""The request journal: one entry per API and OSS request (never ``/_mock/``), oldest first, so a
test can assert how its client behaved and a developer can see what happened
(``GET /_mock/requests``, ``GET /_mock/requests/{request_id}``, the console).

Entries are flat dicts with stable field names (``FIELDS``; other tools, e.g. report cards, read
them). Bodies are kept as exchanged, except: base64 data-URL images are replaced by a marker with
their MIME type and size, binary bodies by a marker with their type and size, and text beyond
``BODY_MAX_CHARS`` is cut. Secrets in ``Authorization`` and ``X-Mock-Admin-Token`` are masked.

Bounded by count (``size``, default 10,000 entries) and by bytes (``max_bytes``, default 64 MiB,
estimated from the bodies and headers kept): the oldest entries go first.

Recording is cheap (it happens on every request; reading is rare): an entry may be recorded as a
``Deferred`` - references to what was exchanged, with its size estimate - whose dict is built the
first time the journal is read (``Deferred.fields``) and kept from then on.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

# The fields of every entry. The first twelve are the summary the list shows with ``brief``.
SUMMARY_FIELDS = ("method", "path", "region", "api_key_id", "status", "code", "latency_ms",
                  "request_id", "task_id", "endpoint", "time", "faults", "reason", "quota",
                  "query", "remote")
EXCHANGE_FIELDS = ("request_headers", "request_body", "request_bytes", "response_headers",
                   "response_body", "response_bytes")
# --- client facts for the report card (mock_server/report) --------------------------------------
# Flat fields every entry also carries (``pipeline/client_facts.py`` fills them), so the report can
# judge a client's behaviour over time without reading bodies again:
#   account_id    the account of the key sent (whichever region it belongs to), else None
#   key_id        that key's api_key_id; "?<8 hex>" (a digest, never the key) for an unknown key;
#                 None when no key was sent. Groups a client's requests even when they are refused
#   key_region    the region the key belongs to (differs from ``region``: a key of the other
#                 region), else None
#   model         create: the body's ``model``; get_policy: the ``model`` parameter; else None
#   body_digest   create: sha256 (16 hex) of the body as canonical JSON (key order ignored, as the
#                 SDK's own field order varies), or of the raw bytes when it is not JSON; else None
#   async_header  create: whether ``X-DashScope-Async: enable`` was sent; else None
#   retry_after   the ``Retry-After`` sent with the answer, in seconds, else None
#   task_status   query: the ``task_status`` answered (None when the answer was cut off)
#   link_expires  query answering SUCCEEDED: the result link's ``Expires``; download: the link's
#                 ``Expires`` (ISO-8601), else None
#   truncated     whether the answer was cut short on purpose (a ``truncate`` fault or scenario)
# They are part of the summary (``brief``), not of the exchange.
REPORT_FIELDS = ("account_id", "key_id", "key_region", "model", "body_digest", "async_header",
                 "retry_after", "task_status", "link_expires", "truncated")
# --- end of client facts ---------------------------------------------------------------------------
FIELDS = SUMMARY_FIELDS + EXCHANGE_FIELDS + REPORT_FIELDS  # in the order an entry has them
# Query-string filters ``GET /_mock/requests`` (and the pytest plugin's ``kf2v.requests``) accept.
EXACT_FILTERS = ("method", "region", "api_key_id", "status", "code", "task_id", "endpoint",
                 "request_id", "path")
FILTERS = (*EXACT_FILTERS, "path_prefix", "since", "until", "fault", "reason",
           "min_latency_ms")
OPTIONS = ("order", "limit", "brief")
DEFAULT_SIZE = 10_000
# Entries recorded after one before it is sealed (``Deferred.seal``): its answer was sent long ago.
SEAL_LAG = 256
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
BODY_MAX_CHARS = 64 * 1024  # of one body's text
DATA_URL_KEEP = 64  # a data URL shorter than this is kept as it is
_ENTRY_OVERHEAD = 600  # bytes: the dict and its small fields
_MASKED = ("authorization", "x-mock-admin-token")


class FilterError(ValueError):
    """A filter the journal does not know or cannot read; the admin API answers it as a 400."""


@dataclass(frozen=True)
class RawBody:
    """A body kept as the bytes exchanged, decoded only when the journal is read."""
    data: bytes
    content_type: str

    def render(self) -> Any:
        if not _is_text(self.content_type):
            return marker(self.content_type, len(self.data), "binary")
        text = self.data[:BODY_MAX_CHARS * 4].decode("utf-8", "replace")
        if "json" in self.content_type or self.content_type in ("", "application/octet-stream"):
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text if len(text) <= BODY_MAX_CHARS else (
            text[:BODY_MAX_CHARS] + f"<… {len(self.data)} bytes in all, cut>")


def _is_text(content_type: str) -> bool:
    return (content_type.startswith("text/") or "json" in content_type or "xml" in content_type
            or content_type in ("", "application/octet-stream", "application/x-www-form-urlencoded"))


def marker(content_type: str | None, size: int | None, what: str) -> str:
    """What stands in for a body (or a data URL) that is not kept."""
    size_text = f"{size} bytes" if size is not None else "size unknown"
    return f"<{what}: {content_type or 'no content type'}, {size_text}>"


def elide(value: Any, tally: list[int] | None = None) -> Any:
    """``value`` (parsed JSON) with every long ``data:`` URL replaced by a marker naming its MIME
    type and decoded size; the rest is shared with ``value``, not copied. ``tally[0]`` grows by
    the characters kept (the journal's size estimate, without a second walk)."""
    if isinstance(value, str):
        if tally is not None:
            tally[0] += min(len(value), DATA_URL_KEEP if value.startswith("data:") else
                            BODY_MAX_CHARS)
        if len(value) > DATA_URL_KEEP and value.startswith("data:"):
            comma = value.find(",", 0, 256)  # never copy the payload: it may be megabytes
            head = value[5:comma] if comma >= 0 else value[5:64]
            mime = head.split(";", 1)[0] or "text/plain"
            length = len(value) - comma - 1 if comma >= 0 else 0
            size = (length * 3 // 4 - (2 if value.endswith("==") else value.endswith("="))
                    if ";base64" in head else length)
            return marker(mime, size, "data URL elided")
        return value if len(value) <= BODY_MAX_CHARS else value[:BODY_MAX_CHARS] + "<… cut>"
    if isinstance(value, dict):
        return {k: elide(v, tally) for k, v in value.items()}
    if isinstance(value, list):
        return [elide(v, tally) for v in value]
    return value


def headers_of(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (repeated names joined with ", "), secrets masked."""
    headers: dict[str, str] = {}
    for name, value in items:
        if name.lower() in _MASKED:
            value = _mask(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _mask(value: str) -> str:
    scheme, space, secret = value.partition(" ")
    if not space:
        scheme, secret = "", value
    shown = f"{secret[:6]}…{secret[-4:]}" if len(secret) > 12 else "…"
    return f"{scheme} {shown}".strip()


def _size_of(value: Any) -> int:
    """A cheap estimate of what ``value`` keeps in memory (headers, bodies)."""
    if isinstance(value, RawBody):
        return len(value.data)
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):  # headers: flat str -> str
        return sum(len(k) + len(v) if isinstance(v, str) else len(k) + _size_of(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return sum(_size_of(v) for v in value)
    return 8


class Deferred:
    """An entry recorded as references (``pipeline/exchange.py`` makes them): ``request_id`` and
    ``cost`` (its size estimate) are known at once; ``fields()`` builds the entry's dict, in
    ``FIELDS`` order, the first time someone reads it."""
    __slots__ = ("request_id", "cost", "_fields")

    def __init__(self, request_id: str | None, cost: int):
        self.request_id = request_id
        self.cost = cost
        self._fields: dict | None = None

    def fields(self) -> dict:
        if self._fields is None:
            self._fields = self.build()
        return self._fields

    def build(self) -> dict:  # pragma: no cover - subclasses build their entry
        raise NotImplementedError

    def seal(self) -> None:
        """Called once the entry's exchange is surely over (``SEAL_LAG`` entries later): drop
        references the entry no longer needs live."""


def _dict_of(entry: "dict | Deferred") -> dict:
    return entry if type(entry) is dict else entry.fields()  # type: ignore[union-attr]


def render(entry: dict, brief: bool = False) -> dict:
    """An entry as the admin API shows it: bodies decoded; ``brief`` leaves out the exchange."""
    if brief:
        return {k: entry.get(k) for k in (*SUMMARY_FIELDS, *REPORT_FIELDS)}
    shown = dict(entry)
    for key in ("request_body", "response_body"):
        if isinstance(shown.get(key), RawBody):
            shown[key] = shown[key].render()
    return shown


class Journal:
    def __init__(self, size: int = DEFAULT_SIZE, max_bytes: int = DEFAULT_MAX_BYTES):
        self.size = max(1, size)
        self.max_bytes = max_bytes
        self._entries: deque[tuple[dict | Deferred, int]] = deque()
        self._bytes = 0
        self._by_id: dict[str, dict | Deferred] = {}

    def record(self, entry: dict | Deferred, body_size: int | None = None) -> None:
        """Keep ``entry`` (a dict, or a ``Deferred`` that knows its own cost); ``body_size``
        (when known) is what a dict's parsed request body keeps, so it need not be walked
        again."""
        if type(entry) is not dict:
            cost, request_id = entry.cost, entry.request_id  # type: ignore[union-attr]
        else:
            cost = (_ENTRY_OVERHEAD + len(entry.get("reason") or "")
                    + _size_of(entry.get("request_headers"))
                    + _size_of(entry.get("response_headers"))
                    + _size_of(entry.get("response_body"))
                    + (body_size if body_size is not None
                       else _size_of(entry.get("request_body"))))
            request_id = entry.get("request_id")
        entries = self._entries
        entries.append((entry, cost))
        if len(entries) > SEAL_LAG:
            sealed = entries[-SEAL_LAG - 1][0]
            if type(sealed) is not dict:
                sealed.seal()  # type: ignore[union-attr]
        self._bytes += cost
        if request_id:
            self._by_id[request_id] = entry
        while len(entries) > self.size or (self._bytes > self.max_bytes and len(entries) > 1):
            old, old_cost = entries.popleft()
            self._bytes -= old_cost
            old_id = old.get("request_id") if type(old) is dict else old.request_id  # type: ignore[union-attr]
            if old_id is not None and self._by_id.get(old_id) is old:
                del self._by_id[old_id]

    @property
    def bytes(self) -> int:
        """The estimated size of what is kept (bounded by ``max_bytes``)."""
        return self._bytes

    def get(self, request_id: str) -> dict | None:
        entry = self._by_id.get(request_id)
        return render(_dict_of(entry)) if entry is not None else None

    def entries(self, **filters: Any) -> list[dict]:
        """Entries that pass every filter (``FILTERS``; values as text, as in a query string),
        shaped by the ``OPTIONS``: ``order`` ``asc`` (default, oldest first) or ``desc``,
        ``limit`` (the first N in that order), ``brief`` (no headers and bodies)."""
        unknown = set(filters) - set(FILTERS) - set(OPTIONS)
        if unknown:
            raise FilterError(f"unknown filter(s): {', '.join(sorted(unknown))}; use "
                              f"{', '.join(FILTERS + OPTIONS)}")
        options = {k: filters.pop(k) for k in OPTIONS if k in filters}
        test = _predicate({k: v for k, v in filters.items() if v is not None})
        order = str(options.get("order") or "asc")
        if order not in ("asc", "desc"):
            raise FilterError("order must be asc or desc")
        limit = _int(options.get("limit"), "limit") if options.get("limit") not in (None, "") \
            else None
        brief = str(options.get("brief", "")).lower() in ("1", "true", "yes")
        source = (e for e, _ in (reversed(self._entries) if order == "desc" else self._entries))
        found = []
        for kept in source:
            entry = _dict_of(kept)
            if test(entry):
                found.append(render(entry, brief))
                if limit is not None and len(found) >= limit:
                    break
        return found

    def clear(self) -> None:
        self._entries.clear()
        self._by_id.clear()
        self._bytes = 0


def _int(value: Any, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise FilterError(f"{name} must be a whole number") from None
    if number < 0:
        raise FilterError(f"{name} must be >= 0")
    return number


def _time(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{name} must be an ISO-8601 time (virtual clock)") from None
    if when.tzinfo is None:
        raise FilterError(f"{name} needs a time zone (e.g. Z or +00:00)")
    return when


def _predicate(filters: dict[str, Any]):
    """One function that tells whether an entry passes every filter (parsed once)."""
    checks = []
    for name in EXACT_FILTERS:
        if name in filters:
            wanted = str(filters[name])
            if name == "status" and len(wanted) == 3 and wanted.endswith("xx"):
                checks.append(lambda e, c=wanted[0]: str(e.get("status"))[:1] == c
                              and e.get("status") is not None)
            elif wanted.lower() in ("null", "none"):
                checks.append(lambda e, n=name: e.get(n) is None)
            else:
                checks.append(lambda e, n=name, w=wanted: str(e.get(n)) == w)
    if "path_prefix" in filters:
        checks.append(lambda e, p=str(filters["path_prefix"]): e["path"].startswith(p))
    if "since" in filters:
        checks.append(lambda e, t=_time(filters["since"], "since"):
                      datetime.fromisoformat(e["time"]) >= t)
    if "until" in filters:
        checks.append(lambda e, t=_time(filters["until"], "until"):
                      datetime.fromisoformat(e["time"]) <= t)
    if "fault" in filters:
        checks.append(lambda e, f=str(filters["fault"]): f in e.get("faults", ()))
    if "reason" in filters:
        wanted = str(filters["reason"]).lower()
        if wanted == "*":  # any reason at all
            checks.append(lambda e: bool(e.get("reason")))
        else:
            checks.append(lambda e, w=wanted: w in (e.get("reason") or "").lower())
    if "min_latency_ms" in filters:
        try:
            least = float(str(filters["min_latency_ms"]))
        except ValueError:
            raise FilterError("min_latency_ms must be a number") from None
        checks.append(lambda e, m=least: e.get("latency_ms", 0) >= m)
    return lambda entry: all(check(entry) for check in checks)
