"""The one clock every timestamp, transition and expiry is computed from.

It runs at real speed from a chosen start unless frozen; tests freeze it and move it with
``advance``/``set`` instead of sleeping. It never moves backwards, so a task that reached a terminal
state stays there.

Across restarts (a durable data dir) it is carried by ``snapshot``/``resume``: a frozen clock
resumes exactly where it stood; a running one resumes at its last saved reading plus the real
(wall-clock) time elapsed since, as if it had kept running while the process was down - never less
than the saved reading, whatever the host's clock did meanwhile.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable


class ClockError(ValueError):
    """A clock change that would break time's arrow (moving backwards) or leave its range."""


# The clock never goes past this: every expiry (24 h tasks, 48 h uploads, link Expires) computed from
# it must still be a datetime (year <= 9999); without the cap, one big advance bricked the emulator.
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


class VirtualClock:
    def __init__(self, start: datetime | None = None, *, frozen: bool = False,
                 monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._anchor_virtual = _aware(start) if start else datetime.now(timezone.utc)
        self._anchor_real = monotonic()
        self._frozen = frozen
        self._listeners: list[Callable[[datetime], None]] = []

    # --- reading ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        if self._frozen:
            return self._anchor_virtual
        return self._anchor_virtual + timedelta(seconds=self._monotonic() - self._anchor_real)

    @property
    def frozen(self) -> bool:
        return self._frozen

    # --- steering --------------------------------------------------------------------------------
    def advance(self, seconds: float) -> datetime:
        if not seconds >= 0:  # NaN too
            raise ClockError("the clock only moves forward: advance_seconds must be >= 0")
        if seconds > (LATEST - self.now()).total_seconds():
            raise ClockError(f"the clock cannot go past {LATEST.isoformat()}")
        return self._rebase(self.now() + timedelta(seconds=seconds))

    def set(self, when: datetime) -> datetime:
        when = _aware(when)
        if when < self.now():
            raise ClockError(f"the clock only moves forward: {when.isoformat()} is in its past")
        if when > LATEST:
            raise ClockError(f"the clock cannot go past {LATEST.isoformat()}")
        return self._rebase(when)

    def freeze(self, frozen: bool = True) -> datetime:
        now = self.now()
        self._frozen = frozen
        return self._rebase(now)

    # --- persistence -----------------------------------------------------------------------------
    def snapshot(self, wall: Callable[[], float] = time.time) -> dict[str, Any]:
        """What ``resume`` needs: the reading now, the wall-clock time of it, and frozen."""
        return {"virtual": self.now().isoformat(), "wall": wall(), "frozen": self._frozen}

    @classmethod
    def resume(cls, snapshot: dict[str, Any], *, not_before: datetime | None = None,
               wall: Callable[[], float] = time.time,
               monotonic: Callable[[], float] = time.monotonic) -> "VirtualClock":
        start = _aware(datetime.fromisoformat(snapshot["virtual"]))
        frozen = bool(snapshot["frozen"])
        if not frozen:
            start += timedelta(seconds=max(0.0, wall() - float(snapshot["wall"])))
        if not_before is not None and start < not_before:
            start = _aware(not_before)
        return cls(start, frozen=frozen, monotonic=monotonic)

    def on_change(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(now)`` after every jump (advance/set), e.g. to sweep expired tasks."""
        self._listeners.append(listener)

    def _rebase(self, when: datetime) -> datetime:
        self._anchor_virtual = when
        self._anchor_real = self._monotonic()
        for listener in list(self._listeners):
            listener(when)
        return when


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
