"""``SqliteStore``: the ``Store`` kept durably in a data dir, in one SQLite file (standard library).

Reads are served from an in-memory copy (an ``InMemoryStore``) loaded when the store opens; every
write goes to SQLite first and is committed before the method returns, so once a handler has made
its writes and answers, what it answered survives a ``kill -9``.

Durability choice: WAL journal with ``synchronous=NORMAL``. A commit appends to the WAL file through
the OS page cache without an fsync; SQLite guarantees that a commit that returned survives the
*process* dying at any moment (the page cache belongs to the kernel) and that the database is never
corrupted. Only an OS crash or power loss may roll back the last commits (never half of one).
``FULL`` would fsync on every commit - milliseconds each on a real disk, on the event loop - to
protect against machine crashes, which an emulator's state does not need to survive.

Why the event loop may call this directly: a write is one statement on one small row (a task is
about a kilobyte of JSON) into the WAL in the page cache, tens of microseconds, no fsync. The only
fsyncs SQLite makes in WAL mode are at checkpoints, so automatic checkpoints are off and
``checkpoint()`` - which the app runs in a worker thread on its own connection - does them instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ..tasks.models import Failure, Task, TaskSpec, Upload, UploadPolicy
from ..tasks.store_interface import Store
from .memory import InMemoryStore

try:
    import fcntl
except ImportError:  # not POSIX: no lock, one process per data dir is then up to the user
    fcntl = None  # type: ignore[assignment]

DB_NAME = "state.sqlite3"
LOCK_NAME = "lock"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policies (upload_dir TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (key TEXT PRIMARY KEY, data TEXT NOT NULL);
-- Upserts keep a row's rowid, so ORDER BY rowid is first-insertion order.
CREATE TABLE IF NOT EXISTS fault_rules (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class DataDirError(RuntimeError):
    """The data dir cannot be used: another process has it open, or it is from another version."""


class SqliteStore(Store):
    durable = True

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_exclusively(self.data_dir / LOCK_NAME)
        self.path = self.data_dir / DB_NAME
        try:
            self._db = _connect(self.path)
            # The file holds the OSS signing secret: owner only (WAL/SHM files copy the mode).
            os.chmod(self.path, 0o600)
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()
            self._migrate()
        except BaseException:
            os.close(self._lock_fd)
            raise
        # The loop thread writes; a worker thread checkpoints on its own connection.
        self._write_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_db: sqlite3.Connection | None = None
        self._memory = InMemoryStore()
        self._sequence = 0
        self._closed = False
        self._load()

    # --- opening ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise DataDirError(f"{self.data_dir} holds state schema {version}; this kf2v-mock "
                               f"reads schema {SCHEMA_VERSION} (use another --data-dir)")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _load(self) -> None:
        rows = self._db.execute
        for (data,) in rows("SELECT data FROM tasks"):
            self._memory.add_task(task_from_json(data))
        for (data,) in rows("SELECT data FROM policies"):
            self._memory.add_policy(UploadPolicy(**_loads(data)))
        for (data,) in rows("SELECT data FROM uploads"):
            self._memory.add_upload(Upload(**_loads(data)))
        for (data,) in rows("SELECT data FROM fault_rules ORDER BY rowid"):
            self._memory.put_fault_rule(json.loads(data))
        for name, value in rows("SELECT name, value FROM meta"):
            self._memory.put_meta(name, value)
        row = rows("SELECT value FROM counters WHERE name = 'sequence'").fetchone()
        self._sequence = row[0] if row else 0

    def _write(self, sql: str, params: tuple = ()) -> None:
        # Autocommit connection: the statement is committed when execute() returns.
        with self._write_lock:
            self._db.execute(sql, params)

    # --- tasks -----------------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        if self._memory.get_task(task.task_id) is not None:
            raise KeyError(f"duplicate task id {task.task_id}")
        self._write("INSERT INTO tasks (task_id, data) VALUES (?, ?)",
                    (task.task_id, task_to_json(task)))
        self._memory.add_task(task)

    def save_task(self, task: Task) -> None:
        self._write("INSERT INTO tasks (task_id, data) VALUES (?, ?) "
                    "ON CONFLICT (task_id) DO UPDATE SET data = excluded.data",
                    (task.task_id, task_to_json(task)))
        self._memory.save_task(task)

    def get_task(self, task_id: str) -> Task | None:
        return self._memory.get_task(task_id)

    def delete_task(self, task_id: str) -> None:
        self._write("DELETE FROM tasks WHERE task_id = ?", (task_id,))
        self._memory.delete_task(task_id)

    def tasks(self) -> list[Task]:
        return self._memory.tasks()

    # --- uploads ---------------------------------------------------------------------------------
    def add_policy(self, policy: UploadPolicy) -> None:
        self._write("INSERT OR REPLACE INTO policies (upload_dir, data) VALUES (?, ?)",
                    (policy.upload_dir, _dumps(policy)))
        self._memory.add_policy(policy)

    def get_policy(self, upload_dir: str) -> UploadPolicy | None:
        return self._memory.get_policy(upload_dir)

    def policies(self) -> list[UploadPolicy]:
        return self._memory.policies()

    def delete_policy(self, upload_dir: str) -> None:
        self._write("DELETE FROM policies WHERE upload_dir = ?", (upload_dir,))
        self._memory.delete_policy(upload_dir)

    def add_upload(self, upload: Upload) -> None:
        self._write("INSERT OR REPLACE INTO uploads (key, data) VALUES (?, ?)",
                    (upload.key, _dumps(upload)))
        self._memory.add_upload(upload)

    def get_upload(self, key: str) -> Upload | None:
        return self._memory.get_upload(key)

    def uploads(self) -> list[Upload]:
        return self._memory.uploads()

    def delete_upload(self, key: str) -> None:
        self._write("DELETE FROM uploads WHERE key = ?", (key,))
        self._memory.delete_upload(key)

    # --- fault rules -----------------------------------------------------------------------------
    def put_fault_rule(self, rule: dict) -> None:
        self._write("INSERT INTO fault_rules (id, data) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (rule["id"], json.dumps(rule, ensure_ascii=False)))
        self._memory.put_fault_rule(rule)

    def fault_rules(self) -> list[dict]:
        return self._memory.fault_rules()

    def delete_fault_rule(self, rule_id: str) -> None:
        self._write("DELETE FROM fault_rules WHERE id = ?", (rule_id,))
        self._memory.delete_fault_rule(rule_id)

    # --- misc ------------------------------------------------------------------------------------
    def next_sequence(self) -> int:
        # One process owns the data dir (the lock file), so the copy in memory is authoritative.
        value = self._sequence + 1
        self._write("INSERT INTO counters (name, value) VALUES ('sequence', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (value,))
        self._sequence = value
        return value

    def get_meta(self, name: str) -> str | None:
        return self._memory.get_meta(name)

    def put_meta(self, name: str, value: str) -> None:
        self._write("INSERT INTO meta (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))
        self._memory.put_meta(name, value)

    def clear(self) -> None:
        with self._write_lock:
            with self._db:  # one transaction: a reset is all or nothing
                self._db.execute("BEGIN")
                for table in ("tasks", "policies", "uploads", "fault_rules", "counters"):
                    self._db.execute(f"DELETE FROM {table}")
        self._memory.clear()
        self._sequence = 0

    # --- housekeeping ----------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (this is where SQLite fsyncs). Blocks:
        call it off the event loop. PASSIVE never waits for, or blocks, the writer."""
        with self._checkpoint_lock:
            if self._closed:
                return
            if self._checkpoint_db is None:
                self._checkpoint_db = _connect(self.path)
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._closed:
                return
            self._closed = True
            if self._checkpoint_db is not None:
                self._checkpoint_db.close()
            with self._write_lock:
                # The last connection to close folds the WAL into the database file.
                self._db.close()
            os.close(self._lock_fd)


# --- encoding ----------------------------------------------------------------------------------------
# Rows are JSON; datetimes are tagged so any datetime field round-trips without a field list.
def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(value: dict) -> Any:
    if value.keys() == {"$datetime"}:
        return datetime.fromisoformat(value["$datetime"])
    return value


def _dumps(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), default=_default, ensure_ascii=False)


def _loads(text: str) -> dict:
    return json.loads(text, object_hook=_hook)


def task_to_json(task: Task) -> str:
    return _dumps(task)


def task_from_json(text: str) -> Task:
    fields = _loads(text)
    fields["spec"] = TaskSpec(**fields["spec"])
    if fields.get("failure") is not None:
        fields["failure"] = Failure(**fields["failure"])
    return Task(**fields)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _lock_exclusively(path: Path) -> int:
    """Hold an exclusive lock on ``path`` for the store's lifetime: two emulators writing one data
    dir would hand out the same task ids. The kernel drops it when the process dies (kill -9 too)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DataDirError(f"{path.parent} is in use by another kf2v-mock process") from None
    return fd
