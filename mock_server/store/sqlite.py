"""``SqliteStore``: the ``Store`` kept durably in a data dir, in one SQLite file (standard library).

Every write is committed before the method returns, so once a handler has made its writes and
answers, what it answered survives a ``kill -9``. Tasks, uploads and policies are read from SQLite
by key (the service keeps what it derives from tasks in memory, tasks/task_index.py); the few fault
rules and meta values are also held in memory.

A task row is small: its facts (a few hundred bytes of JSON plus the prompts), never its derived
start time, never its input frames (kept as files under ``inputs/``, referenced by ``Task.inputs``).

Durability choice: WAL journal with ``synchronous=NORMAL``. A commit appends to the WAL file through
the OS page cache without an fsync; SQLite guarantees that a commit that returned survives the
*process* dying at any moment (the page cache belongs to the kernel) and that the database is never
corrupted. Only an OS crash or power loss may roll back the last commits (never half of one).
``FULL`` would fsync on every commit - milliseconds each on a real disk, on the event loop - to
protect against machine crashes, which an emulator's state does not need to survive.

Why the event loop may call this directly: a write is one statement on one small row into the WAL
in the page cache, tens of microseconds, no fsync. The only fsyncs SQLite makes in WAL mode are at
checkpoints, so automatic checkpoints are off and ``checkpoint()`` - which the app runs in a worker
thread on its own connection, every second - does them instead: a PASSIVE checkpoint copies the
bulk without waiting for the writer, then a RESTART one copies the last few pages, holding the
writer off for just those, so that the next write starts the WAL over from its beginning. The WAL
then holds about a second of writes, and ``journal_size_limit`` trims the file back after a burst:
its size stays bounded under sustained writes.

Opening fails closed: a data dir in use, from an unknown schema, or whose state file is empty, a
directory, not a database or damaged raises a one-line ``DataDirError`` (never taken for a fresh
one: task ids would repeat while the old clips are still there); one that cannot be created,
opened or written raises the ``OSError`` or ``sqlite3.OperationalError`` as it is (a read-only
state is found at once, by a write that is rolled back). The command line turns either into one
line (cli.data_dir_problem). A fresh state file is made under a temporary name and renamed into
place once complete, so an empty one always means damage. A schema 1 data dir is migrated.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..tasks.models import Failure, Task, TaskSpec, Upload, UploadPolicy
from ..tasks.scheduler import to_us
from ..tasks.store_interface import QueueKey, Store

try:
    import fcntl
except ImportError:  # not POSIX: no lock, one process per data dir is then up to the user
    fcntl = None  # type: ignore[assignment]

DB_NAME = "state.sqlite3"
LOCK_NAME = "lock"
SCHEMA_VERSION = 2
WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes the WAL file is trimmed back to when it starts over
# Run at every open: a table (or index) added here later appears in existing data dirs without a
# schema version change; changing a table's shape takes a new version and a migration step.
_SCHEMA = """
-- sequence is the rowid: submit order, and the admin dump's pages.
CREATE TABLE IF NOT EXISTS tasks (sequence INTEGER PRIMARY KEY, task_id TEXT NOT NULL UNIQUE,
                                  data TEXT NOT NULL);
-- Each queue's slot release times after its swept tasks (scheduler.TaskQueue.drop_head).
CREATE TABLE IF NOT EXISTS queue_bases (region TEXT NOT NULL, account_id TEXT NOT NULL,
                                        model TEXT NOT NULL, releases TEXT NOT NULL,
                                        PRIMARY KEY (region, account_id, model));
CREATE TABLE IF NOT EXISTS policies (upload_dir TEXT PRIMARY KEY, expires_us INTEGER NOT NULL,
                                     data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS policies_by_expiry ON policies (expires_us);
CREATE TABLE IF NOT EXISTS uploads (key TEXT PRIMARY KEY, expires_us INTEGER NOT NULL,
                                    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (expires_us);
-- Upserts keep a row's rowid, so ORDER BY rowid is first-insertion order.
CREATE TABLE IF NOT EXISTS fault_rules (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_CLEARED = ("tasks", "queue_bases", "policies", "uploads", "fault_rules", "counters")


class DataDirError(RuntimeError):
    """The data dir cannot be used (in use by another process, unwritable, from another version,
    or its state file is damaged). The message is one line, fit to print as it is."""


class SqliteStore(Store):
    durable = True

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_exclusively(self.data_dir / LOCK_NAME)
        self.path = self.data_dir / DB_NAME
        try:
            self._db = self._open()
        except BaseException:
            os.close(self._lock_fd)
            raise
        # The loop thread writes; a worker thread checkpoints on its own connection.
        self._write_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_db: sqlite3.Connection | None = None
        self._closed = False
        self._fault_rules = {json.loads(d)["id"]: json.loads(d) for (d,) in self._db.execute(
            "SELECT data FROM fault_rules ORDER BY rowid")}
        self._meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        row = self._db.execute("SELECT value FROM counters WHERE name = 'sequence'").fetchone()
        self._sequence = row[0] if row else 0

    # --- opening ---------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise DataDirError(f"{path} is a directory, not kf2v-mock's state file")
        if not path.exists():
            self._make_fresh(path)
        elif path.stat().st_size == 0:
            raise DataDirError(f"{path} is empty: the state it held is lost; move it away to "
                               "start this data dir afresh")
        db = None
        try:
            db = _connect(path)
            # The file holds the OSS signing secret: owner only (WAL/SHM files copy the mode).
            os.chmod(path, 0o600)
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise sqlite3.DatabaseError(f"quick_check: {check[0][0]}")
            self._migrate(db)
            _check_writable(db)
            db.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            return db
        except sqlite3.OperationalError:  # cannot open or write it: as it is, for the CLI's line
            _close(db)
            raise
        except sqlite3.DatabaseError as exc:
            _close(db)
            raise DataDirError(f"{path} cannot be read as kf2v-mock state ({exc}): move it away to "
                               "start afresh") from None
        except BaseException:
            _close(db)
            raise

    def _make_fresh(self, path: Path) -> None:
        """A complete, empty state file at ``path``, made under a temporary name first."""
        fresh = path.with_name(path.name + ".new")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{fresh}{suffix}").unlink(missing_ok=True)
        db = _connect(fresh)
        try:
            self._create_schema(db)
        finally:
            db.close()  # the last connection folds the WAL into the file and removes it
        os.chmod(fresh, 0o600)
        os.replace(fresh, path)

    def _create_schema(self, db: sqlite3.Connection) -> None:
        with db:
            db.execute("BEGIN")
            _run_script(db, _SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            _migrate_from_1(db)
        elif version != SCHEMA_VERSION:
            raise DataDirError(f"{self.data_dir} holds state schema {version}; this kf2v-mock "
                               f"reads schema {SCHEMA_VERSION}")
        self._create_schema(db)  # tables added since the data dir was made

    # --- writing ---------------------------------------------------------------------------------
    def _write(self, sql: str, params: tuple = ()) -> None:
        # Autocommit connection: the statement is committed when execute() returns.
        with self._write_lock:
            self._db.execute(sql, params)

    def _transaction(self, statements: list[tuple[str, Iterable]]) -> None:
        """Several statements, all or none; each with one parameter tuple or a list of them."""
        with self._write_lock, self._db:
            self._db.execute("BEGIN")
            for sql, params in statements:
                if isinstance(params, list):
                    self._db.executemany(sql, params)
                else:
                    self._db.execute(sql, params)

    # --- tasks -----------------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        try:
            self._write("INSERT INTO tasks (sequence, task_id, data) VALUES (?, ?, ?)",
                        (task.sequence, task.task_id, task_to_row(task)))
        except sqlite3.IntegrityError:
            raise KeyError(f"duplicate task id {task.task_id}") from None

    def save_task(self, task: Task) -> None:
        self._write("INSERT INTO tasks (sequence, task_id, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (sequence) DO UPDATE SET data = excluded.data",
                    (task.sequence, task.task_id, task_to_row(task)))

    def get_task(self, task_id: str) -> Task | None:
        row = self._db.execute("SELECT sequence, task_id, data FROM tasks WHERE task_id = ?",
                               (task_id,)).fetchone()
        return task_from_row(*row) if row else None

    def get_tasks(self, task_ids: list[str]) -> list[Task]:
        found = {}
        for start in range(0, len(task_ids), 500):  # SQLite caps the parameters of a statement
            chunk = task_ids[start:start + 500]
            found.update((row[1], row) for row in self._db.execute(
                f"SELECT sequence, task_id, data FROM tasks WHERE task_id IN "
                f"({','.join('?' * len(chunk))})", chunk))
        return [task_from_row(*found[t]) for t in task_ids if t in found]

    def forget_tasks(self, task_ids: list[str],
                     queue_bases: dict[QueueKey, Iterable[int]]) -> None:
        self._transaction([
            ("DELETE FROM tasks WHERE task_id = ?", [(t,) for t in task_ids]),
            ("INSERT INTO queue_bases (region, account_id, model, releases) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (region, account_id, model) DO UPDATE SET releases = excluded.releases",
             [(*key, json.dumps(list(base))) for key, base in queue_bases.items()]),
        ])

    def queue_bases(self) -> dict[QueueKey, tuple[int, ...]]:
        return {(region, account, model): tuple(json.loads(releases))
                for region, account, model, releases in self._db.execute(
                    "SELECT region, account_id, model, releases FROM queue_bases")}

    def tasks_before(self, sequence: int | None, limit: int) -> list[Task]:
        return [task_from_row(*row) for row in self._db.execute(
            "SELECT sequence, task_id, data FROM tasks WHERE sequence < ? ORDER BY sequence DESC "
            "LIMIT ?", (2 ** 63 - 1 if sequence is None else sequence, max(0, limit)))]

    def iter_tasks(self) -> Iterator[Task]:
        after = 0
        while True:  # in pages: no read transaction stays open between them
            page = [task_from_row(*row) for row in self._db.execute(
                "SELECT sequence, task_id, data FROM tasks WHERE sequence > ? ORDER BY sequence "
                "LIMIT 1000", (after,))]
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].sequence

    # --- uploads ---------------------------------------------------------------------------------
    def add_policy(self, policy: UploadPolicy) -> None:
        self._write("INSERT OR REPLACE INTO policies (upload_dir, expires_us, data) "
                    "VALUES (?, ?, ?)",
                    (policy.upload_dir, to_us(policy.expires), _record_to_json(policy)))

    def get_policy(self, upload_dir: str) -> UploadPolicy | None:
        row = self._db.execute("SELECT data FROM policies WHERE upload_dir = ?",
                               (upload_dir,)).fetchone()
        return _policy(row[0]) if row else None

    def policies(self) -> list[UploadPolicy]:
        return [_policy(d) for (d,) in self._db.execute("SELECT data FROM policies ORDER BY rowid")]

    def expired_policies(self, now: datetime, limit: int) -> list[UploadPolicy]:
        return [_policy(d) for (d,) in self._db.execute(
            "SELECT data FROM policies WHERE expires_us <= ? ORDER BY expires_us LIMIT ?",
            (to_us(now), limit))]

    def delete_policies(self, upload_dirs: list[str]) -> None:
        self._transaction([("DELETE FROM policies WHERE upload_dir = ?",
                            [(d,) for d in upload_dirs])])

    def add_upload(self, upload: Upload) -> None:
        self._write("INSERT OR REPLACE INTO uploads (key, expires_us, data) VALUES (?, ?, ?)",
                    (upload.key, to_us(upload.expires_at), _record_to_json(upload)))

    def get_upload(self, key: str) -> Upload | None:
        row = self._db.execute("SELECT data FROM uploads WHERE key = ?", (key,)).fetchone()
        return _upload(row[0]) if row else None

    def uploads(self) -> list[Upload]:
        return [_upload(d) for (d,) in self._db.execute("SELECT data FROM uploads ORDER BY rowid")]

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        return [_upload(d) for (d,) in self._db.execute(
            "SELECT data FROM uploads WHERE expires_us <= ? ORDER BY expires_us LIMIT ?",
            (to_us(now), limit))]

    def delete_uploads(self, keys: list[str]) -> None:
        self._transaction([("DELETE FROM uploads WHERE key = ?", [(k,) for k in keys])])

    # --- fault rules -----------------------------------------------------------------------------
    def put_fault_rule(self, rule: dict) -> None:
        # ASCII JSON: a rule is whatever a client posted, lone surrogates included.
        self._write("INSERT INTO fault_rules (id, data) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (rule["id"], json.dumps(rule)))
        self._fault_rules[rule["id"]] = rule

    def fault_rules(self) -> list[dict]:
        return list(self._fault_rules.values())

    def delete_fault_rule(self, rule_id: str) -> None:
        self._write("DELETE FROM fault_rules WHERE id = ?", (rule_id,))
        self._fault_rules.pop(rule_id, None)

    # --- misc ------------------------------------------------------------------------------------
    def next_sequence(self) -> int:
        # One process owns the data dir (the lock file), so the copy in memory is authoritative.
        value = self._sequence + 1
        self._write("INSERT INTO counters (name, value) VALUES ('sequence', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (value,))
        self._sequence = value
        return value

    def get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def put_meta(self, name: str, value: str) -> None:
        self._write("INSERT INTO meta (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))
        self._meta[name] = value

    def clear(self) -> None:
        self._transaction([(f"DELETE FROM {table}", ()) for table in _CLEARED])  # all or nothing
        self._fault_rules.clear()
        self._sequence = 0

    # --- housekeeping ----------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (this is where SQLite fsyncs) and let
        the WAL start over. Blocks: call it off the event loop. PASSIVE copies the bulk without
        ever holding the writer off; but while writes go on, one always lands during it, and the
        WAL can only start over once every page is copied - it grew without end. RESTART then
        copies the few pages written meanwhile, holding the writer off for just that, so the next
        write starts the WAL from its beginning (trimmed to ``WAL_SIZE_LIMIT``)."""
        with self._checkpoint_lock:
            if self._closed:
                return
            if self._checkpoint_db is None:
                self._checkpoint_db = _connect(self.path)
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

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


# --- rows -----------------------------------------------------------------------------------------
_NOT_IN_ROW = ("task_id", "sequence", "scheduled_time")  # columns, or derived
_TASK_FIELDS = [name for name in Task.__dataclass_fields__ if name not in _NOT_IN_ROW]


def task_to_row(task: Task) -> str:
    """A task's facts as compact JSON (its id and sequence are columns; its start is derived)."""
    row: dict[str, Any] = {}
    for name in _TASK_FIELDS:
        value = getattr(task, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, (TaskSpec, Failure)):
            value = asdict(value)
        row[name] = value
    return _json_text(row)


def task_from_row(sequence: int, task_id: str, data: str) -> Task:
    row = json.loads(data)
    row["spec"] = TaskSpec(**row["spec"])
    if row.get("failure") is not None:
        row["failure"] = Failure(**row["failure"])
    row["submit_time"] = datetime.fromisoformat(row["submit_time"])
    if row.get("canceled_time") is not None:
        row["canceled_time"] = datetime.fromisoformat(row["canceled_time"])
    return Task(task_id=task_id, sequence=sequence, **row)


def _record_to_json(record: Upload | UploadPolicy) -> str:
    row = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}
    return _json_text(row)


def _json_text(row: dict) -> str:
    """Compact JSON, UTF-8 as it is; \\u-escaped if it holds a lone surrogate (a fault rule's
    message a client made up), which SQLite's UTF-8 text cannot."""
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row, separators=(",", ":"))
    return text


def _upload(data: str) -> Upload:
    row = json.loads(data)
    row["created"] = datetime.fromisoformat(row["created"])
    return Upload(**row)


def _policy(data: str) -> UploadPolicy:
    row = json.loads(data)
    row["expires"] = datetime.fromisoformat(row["expires"])
    return UploadPolicy(**row)


# --- schema 1 (before issue 15): rows were whole JSON documents with tagged datetimes -------------
def _migrate_from_1(db: sqlite3.Connection) -> None:
    """Rewrite a schema 1 data dir as schema 2, in one transaction: task rows lose their start
    time and their data: URLs (schema 1 kept the frames in ``inputs/<task_id>``)."""
    def v1(text: str) -> dict:
        return json.loads(text, object_hook=lambda d: datetime.fromisoformat(d["$datetime"])
                          if d.keys() == {"$datetime"} else d)
    with db:
        db.execute("BEGIN")
        old = {table: db.execute(f"SELECT data FROM {table}").fetchall()
               for table in ("tasks", "policies", "uploads")}
        for table in ("tasks", "policies", "uploads"):
            db.execute(f"DROP TABLE {table}")
        _run_script(db, _SCHEMA)  # the three in their new shape (and any table added since)
        for (data,) in old["tasks"]:
            row = v1(data)
            row.pop("scheduled_time", None)
            row["spec"] = TaskSpec(**row["spec"]).for_storage()
            row["failure"] = Failure(**row["failure"]) if row.get("failure") else None
            task = Task(**row, inputs=row["task_id"])
            db.execute("INSERT INTO tasks (sequence, task_id, data) VALUES (?, ?, ?)",
                       (task.sequence, task.task_id, task_to_row(task)))
        for (data,) in old["policies"]:
            policy = UploadPolicy(**v1(data))
            db.execute("INSERT INTO policies (upload_dir, expires_us, data) VALUES (?, ?, ?)",
                       (policy.upload_dir, to_us(policy.expires), _record_to_json(policy)))
        for (data,) in old["uploads"]:
            upload = Upload(**v1(data))
            db.execute("INSERT INTO uploads (key, expires_us, data) VALUES (?, ?, ?)",
                       (upload.key, to_us(upload.expires_at), _record_to_json(upload)))
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _check_writable(db: sqlite3.Connection) -> None:
    """Fail now, not at the first request, if the file cannot be written (a read-only mount):
    a write that is rolled back."""
    db.execute("BEGIN")
    try:
        db.execute("CREATE TABLE write_probe (x)")
    finally:
        db.execute("ROLLBACK")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``script``'s statements one by one (``executescript`` would commit first)."""
    for statement in script.split(";"):
        if statement.strip() and not all(line.strip().startswith("--") or not line.strip()
                                         for line in statement.splitlines()):
            db.execute(statement)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _close(db: sqlite3.Connection | None) -> None:
    if db is not None:
        db.close()


def _lock_exclusively(path: Path) -> int:
    """Hold an exclusive lock on ``path`` for the store's lifetime: two emulators writing one
    data dir would hand out the same task ids. The kernel drops it when the process dies (kill -9
    too)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DataDirError(f"{path.parent} is in use by another kf2v-mock process") from None
    return fd
