"""The request journal: one entry per API and OSS request (never ``/_mock/``), oldest first, so a
test can assert how its client behaved (``GET /_mock/requests``). Bounded: the oldest entries go."""

from __future__ import annotations

from collections import deque

FIELDS = ("method", "path", "region", "api_key_id", "status", "code", "latency_ms", "request_id",
          "task_id", "endpoint", "time", "faults")
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
#   task_status   query: the ``task_status`` answered, else None
#   link_expires  query answering SUCCEEDED: the result link's ``Expires``; download: the link's
#                 ``Expires`` (ISO-8601), else None
#   truncated     whether the answer was cut short on purpose (a ``truncate`` fault or scenario)
REPORT_FIELDS = ("account_id", "key_id", "key_region", "model", "body_digest", "async_header",
                 "retry_after", "task_status", "link_expires", "truncated")
# --- end of client facts ---------------------------------------------------------------------------
# Query-string filters ``GET /_mock/requests`` accepts (exact match on the entry's field).
FILTERS = ("method", "region", "api_key_id", "status", "code", "task_id", "endpoint")
DEFAULT_SIZE = 10_000


class Journal:
    def __init__(self, size: int = DEFAULT_SIZE):
        self._entries: deque[dict] = deque(maxlen=max(1, size))

    def record(self, entry: dict) -> None:
        self._entries.append(entry)

    def entries(self, **filters: str) -> list[dict]:
        """Entries whose fields equal every given filter (compared as text: ``status=429``)."""
        wanted = {k: v for k, v in filters.items() if k in FILTERS and v is not None}
        return [e for e in self._entries
                if all(str(e.get(k)) == v for k, v in wanted.items())]

    def clear(self) -> None:
        self._entries.clear()
