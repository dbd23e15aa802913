"""Endpoint names: which API operation a handler serves ("create", "query", "list", "cancel",
"get_policy", "upload", "download"). Fault rules match on it, quotas count by it and the journal
records it. A handler names itself with ``@endpoint(...)``; ``/_mock/`` handlers and unrouted
paths have none."""

from __future__ import annotations

from typing import Callable, TypeVar

from aiohttp import web

from ..traffic.faults import ENDPOINTS

Handler = TypeVar("Handler", bound=Callable)


def endpoint(name: str) -> Callable[[Handler], Handler]:
    if name not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}")

    def mark(handler: Handler) -> Handler:
        handler.endpoint = name  # type: ignore[attr-defined]
        return handler
    return mark


def endpoint_of(request: web.Request) -> str | None:
    """The API endpoint a request was routed to; None for ``/_mock/`` and unknown paths."""
    return getattr(request.match_info.handler, "endpoint", None)
