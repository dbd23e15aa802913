"""``InMemoryStore``: the ``Store`` kept in dicts, gone with the process (the default without
``--data-dir``, and ``--in-memory``).

Tasks are also kept by sequence number (the admin dump pages by it). Uploads and policies are kept
in the order they were made, which is the order they expire in (each kind has one lifetime and the
clock never goes back), so a sweep reads only the expired ones at the front.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Iterable, Iterator

from sortedcontainers import SortedDict

from ..tasks.models import Task, Upload, UploadPolicy
from ..tasks.store_interface import QueueKey, Store


class InMemoryStore(Store):
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._by_sequence: SortedDict = SortedDict()  # sequence -> task id
        self._bases: dict[QueueKey, tuple[int, ...]] = {}
        self._policies: dict[str, UploadPolicy] = {}
        self._uploads: dict[str, Upload] = {}
        self._fault_rules: dict[str, dict] = {}  # dicts keep first-insertion order on replace
        self._meta: dict[str, str] = {}
        self._sequence = itertools.count(1)

    # --- tasks -----------------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        if task.task_id in self._tasks:
            raise KeyError(f"duplicate task id {task.task_id}")
        self._tasks[task.task_id] = task
        self._by_sequence[task.sequence] = task.task_id

    def save_task(self, task: Task) -> None:
        if task.task_id not in self._tasks:
            self._by_sequence[task.sequence] = task.task_id
        self._tasks[task.task_id] = task

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def forget_tasks(self, task_ids: list[str],
                     queue_bases: dict[QueueKey, Iterable[int]]) -> None:
        for task_id in task_ids:
            task = self._tasks.pop(task_id, None)
            if task is not None:
                self._by_sequence.pop(task.sequence, None)
        self._bases.update({key: tuple(base) for key, base in queue_bases.items()})

    def queue_bases(self) -> dict[QueueKey, tuple[int, ...]]:
        return dict(self._bases)

    def tasks_before(self, sequence: int | None, limit: int) -> list[Task]:
        ids = self._by_sequence.irange(maximum=sequence, inclusive=(True, False), reverse=True)
        return [self._tasks[self._by_sequence[s]] for s in itertools.islice(ids, max(0, limit))]

    def iter_tasks(self) -> Iterator[Task]:
        return (self._tasks[task_id] for task_id in list(self._by_sequence.values()))

    # --- uploads ---------------------------------------------------------------------------------
    def add_policy(self, policy: UploadPolicy) -> None:
        self._policies.pop(policy.upload_dir, None)  # to the back: the newest
        self._policies[policy.upload_dir] = policy

    def get_policy(self, upload_dir: str) -> UploadPolicy | None:
        return self._policies.get(upload_dir)

    def policies(self) -> list[UploadPolicy]:
        return list(self._policies.values())

    def expired_policies(self, now: datetime, limit: int) -> list[UploadPolicy]:
        return list(itertools.islice(itertools.takewhile(
            lambda p: now >= p.expires, self._policies.values()), limit))

    def delete_policies(self, upload_dirs: list[str]) -> None:
        for upload_dir in upload_dirs:
            self._policies.pop(upload_dir, None)

    def add_upload(self, upload: Upload) -> None:
        self._uploads.pop(upload.key, None)  # to the back: the newest
        self._uploads[upload.key] = upload

    def get_upload(self, key: str) -> Upload | None:
        return self._uploads.get(key)

    def uploads(self) -> list[Upload]:
        return list(self._uploads.values())

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        return list(itertools.islice(itertools.takewhile(
            lambda u: now >= u.expires_at, self._uploads.values()), limit))

    def delete_uploads(self, keys: list[str]) -> None:
        for key in keys:
            self._uploads.pop(key, None)

    # --- fault rules -----------------------------------------------------------------------------
    def put_fault_rule(self, rule: dict) -> None:
        self._fault_rules[rule["id"]] = rule

    def fault_rules(self) -> list[dict]:
        return list(self._fault_rules.values())

    def delete_fault_rule(self, rule_id: str) -> None:
        self._fault_rules.pop(rule_id, None)

    # --- misc ------------------------------------------------------------------------------------
    def next_sequence(self) -> int:
        return next(self._sequence)

    def get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def put_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    def clear(self) -> None:
        self._tasks.clear()
        self._by_sequence.clear()
        self._bases.clear()
        self._policies.clear()
        self._uploads.clear()
        self._fault_rules.clear()
        self._sequence = itertools.count(1)
