"""The request journal: one entry per API and OSS request (never ``/_mock/``), oldest first, so a
test can assert how its client behaved (``GET /_mock/requests``). Bounded: the oldest entries go."""

from __future__ import annotations

from collections import deque

FIELDS = ("method", "path", "region", "api_key_id", "status", "code", "latency_ms", "request_id",
          "task_id", "endpoint", "time", "faults")
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
