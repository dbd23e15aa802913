"""``InMemoryStore``: the ``Store`` kept in dicts, gone with the process (the default without
``--data-dir``, and ``--in-memory``). ``SqliteStore`` reads from one of these too."""

from __future__ import annotations

import itertools

from ..tasks.models import Task, Upload, UploadPolicy
from ..tasks.store_interface import Store


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
