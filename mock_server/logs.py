"""How ``kf2v-mock serve``/``run`` log: to stderr, as text lines or JSON lines (``--log-format``),
from ``--log-level`` up. Per-request lines (``kf2v_mock.requests``) and per-task lifecycle lines
(``kf2v_mock.lifecycle``) are INFO; ``--quiet`` turns both off and keeps the rest.

A request line costs little (one is logged per request): when its only destination is this
module's text handler it is handed to it directly, without a ``LogRecord``
(``pipeline/log_lines.py``), and such lines are written together once per turn of the event loop
(one write for every request answered in it, so a line may follow its answer by a moment); the
text format's time stamp is made once per second. Every other line is written at once."""

from __future__ import annotations

import json
import logging
import sys
import time
from asyncio import events
from datetime import datetime, timezone
from typing import TextIO

from .pipeline import log_lines

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
CHATTY = ("kf2v_mock.requests", "kf2v_mock.lifecycle")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else was passed with ``extra=`` and goes to JSON as is.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per line: time (wall clock, UTC), level, logger, message, and every field
    the line carries (request_id, task_id, event, virtual_time, reason, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextLines(logging.Formatter):
    """``TEXT_FORMAT``, with the time stamp's seconds formatted once per second."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._stamp = ""

    def stamp(self, created: float) -> str:
        """``asctime`` as ``logging.Formatter`` writes it: local time, then ``,`` and msecs."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        return f"{self._stamp},{int((created - second) * 1000):03d}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created)


class LoopBatchedHandler(logging.StreamHandler):
    """A stream handler that can also take ready-made lines (``put``: the request lines of
    ``pipeline/log_lines.py``) and writes those logged on an event loop's thread together, once
    per turn of that loop (``call_soon``): one write for every request answered in it. Records
    (``emit``) are written at once, after any pending lines, so the order holds."""

    def __init__(self, stream: TextIO):
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            with self.lock:  # type: ignore[union-attr]
                self._pending.append(line)
                self._write_pending()
        except Exception:
            self.handleError(record)

    def put(self, line: str) -> None:
        """Write ``line`` (no newline) by the end of this turn of the running loop (at once
        when no loop runs in this thread)."""
        loop = events._get_running_loop()
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if loop is None:
                self._write_pending()
            elif not self._scheduled:
                self._scheduled = True
                loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            lines = self._pending
            self._pending = []
            self.stream.write(self.terminator.join(lines) + self.terminator)
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()


def setup(level: str = "info", fmt: str = "text", quiet: bool = False) -> None:
    handler = LoopBatchedHandler(sys.stderr)
    formatter = JsonLines() if fmt == "json" else TextLines()
    handler.setFormatter(formatter)
    # Request lines go straight to a text handler when nothing else would see them.
    log_lines.write_directly_to(handler, formatter.stamp if isinstance(formatter, TextLines)
                                else None)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
