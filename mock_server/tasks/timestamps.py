"""How DashScope writes times: task fields in Beijing time, list fields in epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

# api-facts §4.3: "YYYY-MM-DD HH:mm:ss.SSS", UTC+8 ([QW-KF2V]); both regions are UTC+8.
SERVICE_TZ = timezone(timedelta(hours=8))


@lru_cache(maxsize=8192)  # a task's times never change and are read on every poll
def task_time(when: datetime) -> str:
    local = when.astimezone(SERVICE_TZ)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def parse_list_time(text: str) -> datetime:
    """List filters use ``YYYYMMDDhhmmss`` (api-facts §6), read as service-local time."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SERVICE_TZ)


def parse_iso(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
