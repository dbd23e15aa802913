"""Why an answer is what it is: the reason a check gave for a refusal (``DashScopeError.reason``,
``OssError.reason``) and the notes of what acted on a request that was answered anyway (fault
rules and scenarios that fired, a task that will fail). ``request_context`` joins them into one
``reason`` for the log line, the journal entry and the ``X-Kf2v-Mock-Reason`` header."""

from __future__ import annotations

import re

from aiohttp import web

from .keys import NOTES

REASON_HEADER = "X-Kf2v-Mock-Reason"
# Header values are kept short: clients and proxies cap header sizes; the journal has it all.
HEADER_MAX_CHARS = 300
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def note(request: web.Request, text: str) -> None:
    """Record something that acted on ``request`` (it shows in its reason)."""
    notes = request.get(NOTES)
    if notes is None:
        notes = request[NOTES] = []
    notes.append(text)


def compose(refusal: str | None, notes: list[str] | None) -> str | None:
    """The one reason of an answer: the refusal first, then the notes, in the order they happened."""
    parts = [refusal] if refusal else []
    parts += notes or []
    # Control characters from client input (a URL with a newline) never break a log line.
    return escape_controls("; ".join(parts)) or None


def escape_controls(text: str) -> str:
    """``text`` with each control character written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def header_value(reason: str) -> str:
    """``reason`` as a header value: printable ASCII only (others as ``\\uXXXX``), one line, at most
    ``HEADER_MAX_CHARS`` characters."""
    text = _UNSAFE.sub(" ", reason).encode("ascii", "backslashreplace").decode("ascii")
    if len(text) > HEADER_MAX_CHARS:
        text = text[:HEADER_MAX_CHARS - 3] + "..."
    return text

