"""The one interface all emulator state goes through.

``InMemoryStore`` keeps everything in dicts (``--in-memory``, and the default without
``--data-dir``); ``sqlite_store.SqliteStore`` implements the same ``Store`` protocol durably under a
data dir, so no module outside these touches the containers directly. Callers save a task again
after changing it (``save_task``), which is what a persistent store needs.
"""

from __future__ import annotations

import abc
import itertools
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


class InMemoryStore(Store):
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._policies: dict[str, UploadPolicy] = {}
        self._uploads: dict[str, Upload] = {}
        self._fault_rules: dict[str, dict] = {}  # dicts keep first-insertion order on replace
        self._meta: dict[str, str] = {}
        self._sequence = itertools.count(1)

    def add_task(self, task: Task) -> None:
        if task.task_id in self._tasks:
            raise KeyError(f"duplicate task id {task.task_id}")
        self._tasks[task.task_id] = task

    def save_task(self, task: Task) -> None:
        self._tasks[task.task_id] = task

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def delete_task(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def tasks(self) -> list[Task]:
        return sorted(self._tasks.values(), key=lambda t: t.sequence)

    def add_policy(self, policy: UploadPolicy) -> None:
        self._policies[policy.upload_dir] = policy

    def get_policy(self, upload_dir: str) -> UploadPolicy | None:
        return self._policies.get(upload_dir)

    def policies(self) -> list[UploadPolicy]:
        return list(self._policies.values())

    def delete_policy(self, upload_dir: str) -> None:
        self._policies.pop(upload_dir, None)

    def add_upload(self, upload: Upload) -> None:
        self._uploads[upload.key] = upload

    def get_upload(self, key: str) -> Upload | None:
        return self._uploads.get(key)

    def uploads(self) -> list[Upload]:
        return list(self._uploads.values())

    def delete_upload(self, key: str) -> None:
        self._uploads.pop(key, None)

    def put_fault_rule(self, rule: dict) -> None:
        self._fault_rules[rule["id"]] = rule

    def fault_rules(self) -> list[dict]:
        return list(self._fault_rules.values())

    def delete_fault_rule(self, rule_id: str) -> None:
        self._fault_rules.pop(rule_id, None)

    def next_sequence(self) -> int:
        return next(self._sequence)

    def get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def put_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    def clear(self) -> None:
        self._tasks.clear()
        self._policies.clear()
        self._uploads.clear()
        self._fault_rules.clear()
        self._sequence = itertools.count(1)
