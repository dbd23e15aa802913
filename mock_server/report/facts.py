"""What the report reads, as typed values: the journal's entries (``Entry``), the task timelines
(``TaskFacts``, copied from the store's tasks so the rules can run off the event loop), and
``Observed``, the indexes every rule shares (by task, by operation, who owns which task)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from ..tasks.models import CANCELED, FAILED, SUCCEEDED, UNKNOWN, Task
from ..tasks.timestamps import parse_iso

FINISHED = (SUCCEEDED, FAILED, CANCELED)  # terminal answers of a task that exists
TERMINAL = (*FINISHED, UNKNOWN)


@dataclass(frozen=True)
class Entry:
    """One journal entry (``traffic/journal.py``: FIELDS and REPORT_FIELDS)."""
    index: int
    time: datetime
    method: str
    path: str
    region: str
    endpoint: str | None
    status: int | None
    code: str | None
    request_id: str
    task_id: str | None
    faults: tuple[str, ...]
    key_id: str | None = None
    account_id: str | None = None
    key_region: str | None = None
    model: str | None = None
    body_digest: str | None = None
    async_header: bool | None = None
    retry_after: float | None = None
    task_status: str | None = None
    link_expires: datetime | None = None
    truncated: bool = False

    @classmethod
    def from_journal(cls, index: int, raw: dict[str, Any]) -> "Entry":
        expires = raw.get("link_expires")
        return cls(
            index=index, time=parse_iso(raw["time"]), method=raw.get("method", ""),
            path=raw.get("path", ""), region=raw.get("region", ""), endpoint=raw.get("endpoint"),
            status=raw.get("status"), code=raw.get("code"), request_id=raw.get("request_id", ""),
            task_id=raw.get("task_id"), faults=tuple(raw.get("faults") or ()),
            key_id=raw.get("key_id") or raw.get("api_key_id"), account_id=raw.get("account_id"),
            key_region=raw.get("key_region"), model=raw.get("model"),
            body_digest=raw.get("body_digest"), async_header=raw.get("async_header"),
            retry_after=raw.get("retry_after"), task_status=raw.get("task_status"),
            link_expires=parse_iso(expires) if expires else None,
            truncated=bool(raw.get("truncated")))

    @property
    def failed_transiently(self) -> bool:
        """Answered with something worth retrying later: 429, 5xx, or no (whole) answer at all."""
        return self.status is None or self.truncated or self.status == 429 or self.status >= 500

    def evidence(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"request_id": self.request_id, "time": self.time.isoformat(),
                                 "endpoint": self.endpoint, "status": self.status}
        for name in ("code", "task_status", "task_id"):
            if getattr(self, name) is not None:
                shown[name] = getattr(self, name)
        if self.retry_after is not None:
            shown["retry_after"] = self.retry_after
        if self.truncated:
            shown["truncated"] = True
        if self.faults:
            shown["faults"] = list(self.faults)
        return shown


@dataclass(frozen=True)
class TaskFacts:
    """A task's timeline as the store holds it, read at ``now``."""
    task_id: str
    region: str
    account_id: str
    api_key_id: str
    model: str
    status: str  # at ``now``
    submit_time: datetime
    scheduled_time: datetime | None
    end_time: datetime | None
    expires_at: datetime
    failure_code: str | None

    @classmethod
    def from_task(cls, task: Task, now: datetime) -> "TaskFacts":
        return cls(task.task_id, task.region, task.account_id, task.api_key_id, task.spec.model,
                   task.status_at(now), task.submit_time, task.scheduled_time, task.end_time,
                   task.expires_at, task.failure.code if task.failure else None)


class Observed:
    """The journal (in time order) and the tasks it names, indexed for the rules."""

    def __init__(self, entries: Iterable[Entry], tasks: dict[str, TaskFacts], now: datetime,
                 final: bool):
        self.entries = sorted(entries, key=lambda e: (e.time, e.index))
        self.tasks = tasks
        self.now = now
        self.final = final
        self.by_task: dict[str, list[Entry]] = {}
        self.creates: list[Entry] = []
        self.created: dict[str, Entry] = {}  # task id -> the create that made it
        self.lists = [e for e in self.entries if e.endpoint == "list" and e.status == 200]
        for entry in self.entries:
            if entry.endpoint == "create":
                self.creates.append(entry)
                if entry.status == 200 and entry.task_id:
                    self.created[entry.task_id] = entry
            elif entry.task_id:
                self.by_task.setdefault(entry.task_id, []).append(entry)

    # --- who -------------------------------------------------------------------------------------
    def owner(self, task_id: str) -> tuple[str | None, str | None, str | None]:
        """(key id, account id, region) of whoever created ``task_id``, as far as is known."""
        create = self.created.get(task_id)
        if create is not None:
            return create.key_id, create.account_id, create.region
        facts = self.tasks.get(task_id)
        if facts is not None:
            return facts.api_key_id, facts.account_id, facts.region
        asked = next((e for e in self.by_task.get(task_id, []) if e.key_id), None)
        return (asked.key_id, asked.account_id, asked.region) if asked else (None, None, None)

    def who(self, entry: Entry) -> tuple[str | None, str | None, str | None]:
        """(key id, account id, region) a request is attributed to: its key, or for a download
        (which carries none) the owner of the task."""
        if entry.key_id is None and entry.task_id:
            return self.owner(entry.task_id)
        return entry.key_id, entry.account_id, entry.region

    # --- what ------------------------------------------------------------------------------------
    def queries(self, task_id: str) -> list[Entry]:
        return [e for e in self.by_task.get(task_id, []) if e.endpoint == "query"]

    def downloads(self, task_id: str) -> list[Entry]:
        return [e for e in self.by_task.get(task_id, []) if e.endpoint == "download"
                and e.method == "GET"]

    def operations(self) -> dict[tuple, list[Entry]]:
        """Requests grouped by "the same request sent again": same key, endpoint and target (the
        create's body, the task, the link, the model, the path)."""
        groups: dict[tuple, list[Entry]] = {}
        for entry in self.entries:
            if entry.endpoint is None:
                continue
            key_id = self.who(entry)[0]
            if entry.endpoint == "create":
                target: Any = entry.body_digest or entry.path
            elif entry.endpoint in ("query", "cancel"):
                target = entry.task_id
            elif entry.endpoint == "download":
                target = (entry.path, entry.link_expires)
            elif entry.endpoint == "get_policy":
                target = entry.model
            else:
                target = entry.path
            groups.setdefault((key_id, entry.endpoint, target), []).append(entry)
        return groups


def seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
