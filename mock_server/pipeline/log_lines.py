"""The per-request log line, cheaply: ``request_line`` logs it as an INFO record of its logger, unless
the only place the record would go is the text handler ``kf2v-mock serve`` installed
(``logs.setup``) - then the same line is handed to that handler directly, without the
``LogRecord`` that logging would build and format for it (about two fifths of a whole poll's
cost). Any other handler (pytest's ``caplog``, a JSON log, a user's) gets the record as usual."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Protocol


class LineSink(Protocol):
    filters: list
    level: int

    def put(self, line: str) -> None: ...


_sink: LineSink | None = None
_stamp: Callable[[float], str] | None = None


def write_directly_to(handler: LineSink | None, stamp: Callable[[float], str] | None) -> None:
    """Let request lines skip logging when ``handler`` (writing ``<stamp> LEVEL name: message``
    lines, with ``stamp(time)`` its time stamp) is their only destination; None: never."""
    global _sink, _stamp
    _sink, _stamp = (handler, stamp) if handler is not None and stamp is not None else (None, None)


def request_line(logger: logging.Logger, message: str, **fields: Any) -> None:
    """One INFO line of ``logger`` carrying ``fields`` (as ``extra``); the caller has checked
    ``logger.isEnabledFor(logging.INFO)``."""
    sink, stamp = _sink, _stamp
    if sink is not None and stamp is not None and _only_destination(logger, sink):
        sink.put(f"{stamp(time.time())} INFO {logger.name}: {message}")
    else:
        logger.info(message, extra=fields)


def _only_destination(logger: logging.Logger, sink: LineSink) -> bool:
    """Whether an INFO record of ``logger`` would reach ``sink`` and nothing else, unfiltered."""
    if sink.filters or sink.level > logging.INFO:
        return False
    current = logger
    while not current.handlers:
        if current.filters or not current.propagate or current.parent is None:
            return False
        current = current.parent
    return current is logging.root and not current.filters and current.handlers == [sink]
