"""The one interface all emulator state goes through, owned by the domain that needs it.

Its implementations live in ``mock_server/store/``: ``store.memory.InMemoryStore`` keeps everything
in dicts (``--in-memory``, and the default without ``--data-dir``); ``store.sqlite.SqliteStore``
keeps the same state durably under a data dir. No module outside those touches the containers
directly.

Only facts are stored. What follows from them (a task's start, its status, the list's indexes) is
derived in memory by the service (tasks/task_index.py), rebuilt from ``iter_tasks`` when it starts.
Tasks are values: a caller changes a copy and hands it to ``save_task``; a method that raises has
changed nothing. Every method that a request may call costs the same however many tasks, uploads
or policies are stored; the ones that read everything say so.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Iterable, Iterator

from .models import Task, Upload, UploadPolicy

# A task queue's name: (region, account_id, model).
QueueKey = tuple[str, str, str]


class Store(abc.ABC):
    # True when what is stored survives the process (then clip inputs are kept on disk too).
    durable: bool = False

    # --- tasks -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_task(self, task: Task) -> None:
        """Store a new task (its ``scheduled_time`` is derived, never stored); a duplicate id
        raises ``KeyError``."""

    @abc.abstractmethod
    def save_task(self, task: Task) -> None:
        """Store the new version of a stored task."""

    @abc.abstractmethod
    def get_task(self, task_id: str) -> Task | None: ...

    def get_tasks(self, task_ids: list[str]) -> list[Task]:
        """The stored ones of ``task_ids``, in that order."""
        return [t for t in map(self.get_task, task_ids) if t is not None]

    @abc.abstractmethod
    def forget_tasks(self, task_ids: list[str], queue_bases: dict[QueueKey, Iterable[int]]) -> None:
        """Delete ``task_ids`` (swept: expired) and, in the same step, record each named queue's
        slot release times after them (epoch microseconds; scheduler.TaskQueue.drop_head), so the
        tasks left are placed exactly as before when the service starts again."""

    @abc.abstractmethod
    def queue_bases(self) -> dict[QueueKey, tuple[int, ...]]:
        """Every queue's recorded slot release times (see ``forget_tasks``)."""

    @abc.abstractmethod
    def tasks_before(self, sequence: int | None, limit: int) -> list[Task]:
        """Up to ``limit`` tasks with a smaller sequence number (any, for None), newest first:
        the admin dump's pages."""

    @abc.abstractmethod
    def iter_tasks(self) -> Iterator[Task]:
        """Every task, in sequence order. Reads everything: for start-up, not for requests."""

    def tasks(self) -> list[Task]:
        """Every task, in sequence order (reads everything; tests and start-up)."""
        return list(self.iter_tasks())

    # --- uploads ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_policy(self, policy: UploadPolicy) -> None: ...

    @abc.abstractmethod
    def get_policy(self, upload_dir: str) -> UploadPolicy | None: ...

    @abc.abstractmethod
    def policies(self) -> list[UploadPolicy]:
        """Every policy (reads everything: tests)."""

    @abc.abstractmethod
    def expired_policies(self, now: datetime, limit: int) -> list[UploadPolicy]:
        """Up to ``limit`` policies that expired by ``now``, oldest first."""

    @abc.abstractmethod
    def delete_policies(self, upload_dirs: list[str]) -> None: ...

    @abc.abstractmethod
    def add_upload(self, upload: Upload) -> None:
        """Store ``upload`` (replacing one with the same key)."""

    @abc.abstractmethod
    def get_upload(self, key: str) -> Upload | None: ...

    @abc.abstractmethod
    def uploads(self) -> list[Upload]:
        """Every upload (reads everything: tests)."""

    @abc.abstractmethod
    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        """Up to ``limit`` uploads that expired by ``now``, oldest first."""

    @abc.abstractmethod
    def delete_uploads(self, keys: list[str]) -> None: ...

    # --- fault rules (``POST /_mock/faults``; JSON-serialisable dicts) ---------------------------
    @abc.abstractmethod
    def put_fault_rule(self, rule: dict) -> None:
        """Insert ``rule``, or replace the one with the same ``rule["id"]`` in its place."""

    @abc.abstractmethod
    def fault_rules(self) -> list[dict]:
        """Every rule, in first-insertion order."""

    @abc.abstractmethod
    def delete_fault_rule(self, rule_id: str) -> None: ...

    # --- misc ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def next_sequence(self) -> int:
        """A counter that never repeats within one store (seeds per-task randomness)."""

    @abc.abstractmethod
    def get_meta(self, name: str) -> str | None:
        """A small named value that outlives ``clear()`` (the clock's state, the OSS secret)."""

    @abc.abstractmethod
    def put_meta(self, name: str, value: str) -> None: ...

    @abc.abstractmethod
    def clear(self) -> None:
        """Forget every task, queue base, upload, policy and fault rule and restart the sequence
        (``POST /_mock/reset``); meta values stay."""

    def checkpoint(self) -> None:
        """Housekeeping that may block on disk IO; called from a worker thread now and then."""

    def close(self) -> None:
        """Release what the store holds open (files, locks); it is not used afterwards."""
