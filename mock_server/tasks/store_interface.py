"""The one interface all emulator state goes through, owned by the domain that needs it.

Its implementations live in ``mock_server/store/``: ``store.memory.InMemoryStore`` keeps everything
in dicts (``--in-memory``, and the default without ``--data-dir``); ``store.sqlite.SqliteStore``
keeps the same state durably under a data dir. No module outside those touches the containers
directly. Callers save a task again after changing it (``save_task``), which is what a persistent
store needs.
"""

from __future__ import annotations

import abc

from .models import Task, Upload, UploadPolicy


class Store(abc.ABC):
    # True when what is stored survives the process (then clip inputs are kept on disk too).
    durable: bool = False

    # --- tasks -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_task(self, task: Task) -> None: ...

    @abc.abstractmethod
    def save_task(self, task: Task) -> None: ...

    @abc.abstractmethod
    def get_task(self, task_id: str) -> Task | None: ...

    @abc.abstractmethod
    def delete_task(self, task_id: str) -> None: ...

    @abc.abstractmethod
    def tasks(self) -> list[Task]:
        """Every task, in submit order."""

    def tasks_of(self, region: str, account_id: str) -> list[Task]:
        return [t for t in self.tasks() if t.region == region and t.account_id == account_id]

    # --- uploads ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_policy(self, policy: UploadPolicy) -> None: ...

    @abc.abstractmethod
    def get_policy(self, upload_dir: str) -> UploadPolicy | None: ...

    @abc.abstractmethod
    def policies(self) -> list[UploadPolicy]: ...

    @abc.abstractmethod
    def delete_policy(self, upload_dir: str) -> None: ...

    @abc.abstractmethod
    def add_upload(self, upload: Upload) -> None: ...

    @abc.abstractmethod
    def get_upload(self, key: str) -> Upload | None: ...

    @abc.abstractmethod
    def uploads(self) -> list[Upload]: ...

    @abc.abstractmethod
    def delete_upload(self, key: str) -> None: ...

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
        """Forget every task, upload, policy and fault rule and restart the sequence
        (``POST /_mock/reset``); meta values stay."""

    def checkpoint(self) -> None:
        """Housekeeping that may block on disk IO; called from a worker thread now and then."""

    def close(self) -> None:
        """Release what the store holds open (files, locks); it is not used afterwards."""
