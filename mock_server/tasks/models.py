"""Domain state: accounts, tasks and uploads. Plain data plus the rules that derive a task's status
from the clock; nothing here knows about HTTP or storage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
UNKNOWN = "UNKNOWN"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN)
TERMINAL = (SUCCEEDED, FAILED, CANCELED, UNKNOWN)

# api-facts §4.1/§8: task ids and result links are kept 24 hours.
TASK_TTL = timedelta(hours=24)
# api-facts §9: an oss:// upload stays valid 48 hours.
UPLOAD_TTL = timedelta(hours=48)
# api-facts §9: a getPolicy grant (expire_in_seconds 300) and its file size limit (max_file_size_mb).
UPLOAD_POLICY_TTL = timedelta(seconds=300)
UPLOAD_MAX_BYTES = 100 * 1024 * 1024
# The largest seed a create may ask for (api-facts §1: [0, 2147483647]).
SEED_MAX = 2147483647


@dataclass(frozen=True)
class Account:
    """Who a key belongs to. ``account_id`` stands for the Alibaba Cloud main account."""
    account_id: str
    region: str
    api_key: str
    api_key_id: str


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A validated create request (defaults applied, prompts truncated)."""
    model: str
    first_frame_url: str
    last_frame_url: str | None
    prompt: str | None
    negative_prompt: str | None
    template: str | None
    resolution: str
    duration: int
    prompt_extend: bool
    watermark: bool
    seed: int | None

    def for_storage(self) -> "TaskSpec":
        """The spec as a task row keeps it: the frames are kept apart (``Task.inputs``), so a
        ``data:`` URL is kept as a marker naming its type and size (as the request journal shows
        one), and any other URL at most ``STORED_URL_MAX`` characters: a stored task is a small
        row whatever the create sent."""
        return replace(self, first_frame_url=_stored_url(self.first_frame_url),
                       last_frame_url=_stored_url(self.last_frame_url))


STORED_URL_MAX = 1024


def _stored_url(url: str | None) -> str | None:
    if url is None:
        return None
    if url.startswith("data:"):
        comma = url.find(",", 0, 256)  # the payload is never copied: it may be megabytes
        head = url[5:comma] if comma >= 0 else url[5:64]
        length = len(url) - comma - 1 if comma >= 0 else 0
        size = (length * 3 // 4 - (2 if url.endswith("==") else url.endswith("="))
                if ";base64" in head else length)
        url = f"<data URL elided: {head.split(';', 1)[0] or 'text/plain'}, {size} bytes>"
    elif len(url) > STORED_URL_MAX:
        url = url[:STORED_URL_MAX] + "<… cut>"
    # Text SQLite can hold whatever the URL carried (a lone surrogate is shown escaped).
    return url.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str
    at: str = "end"  # "start": fails as soon as it is scheduled; "end": after its run time


@dataclass(slots=True)
class Task:
    task_id: str
    request_id: str
    region: str
    account_id: str
    api_key_id: str
    spec: TaskSpec
    seed: int  # the spec's seed, or one drawn for it
    submit_time: datetime
    queue_wait: float
    run_time: float
    sequence: int
    actual_prompt: str | None = None
    width: int = 0
    height: int = 0
    # Derived by the scheduler (tasks/scheduler.py) when the service hands a task out, never
    # stored; None if it never starts (canceled first).
    scheduled_time: datetime | None = None
    canceled_time: datetime | None = None
    failure: Failure | None = None
    # Media: the render fills these; SUCCEEDED is reported only once ``video_ready``.
    video_ready: bool = False
    video_key: str | None = None  # object key under the region's result bucket
    # Where the input frames are kept until the clip is written (a folder under the data dir's
    # inputs/); None when they are not kept on disk.
    inputs: str | None = None

    @property
    def expires_at(self) -> datetime:
        return self.submit_time + TASK_TTL

    @property
    def end_time(self) -> datetime | None:
        """When the task ends (or ended), if it has been scheduled."""
        if self.canceled_time is not None:
            return self.canceled_time
        if self.scheduled_time is None:
            return None
        if self.failure is not None and self.failure.at == "start":
            return self.scheduled_time
        return self.scheduled_time + _duration(self.run_time)

    def status_at(self, now: datetime) -> str:
        if now >= self.expires_at:
            return UNKNOWN
        if self.canceled_time is not None and now >= self.canceled_time:
            return CANCELED
        if self.scheduled_time is None or now < self.scheduled_time:
            return PENDING
        end = self.end_time
        assert end is not None
        if now < end:
            return RUNNING
        if self.failure is not None:
            return FAILED
        # The clip must be fully written before SUCCEEDED is reported; until then it still runs.
        return SUCCEEDED if self.video_ready else RUNNING


@lru_cache(maxsize=4096)  # read on every poll; a timedelta from a float costs a few microseconds
def _duration(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass(slots=True)
class Upload:
    """An object put through the temporary-upload flow, addressable as ``oss://<key>``."""
    key: str
    account_id: str
    region: str
    model: str
    path: str
    size: int
    content_type: str
    created: datetime

    @property
    def expires_at(self) -> datetime:
        return self.created + UPLOAD_TTL


@dataclass(slots=True)
class UploadPolicy:
    """One getPolicy answer: the upload_dir it grants and until when."""
    upload_dir: str
    account_id: str
    region: str
    model: str
    expires: datetime
    max_bytes: int
