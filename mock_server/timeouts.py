"""Timeouts for slow and stuck clients on the listeners (README, "Slow and stuck clients").

aiohttp closes a connection that sits idle between requests after ``keepalive_timeout``
(``Settings.idle_timeout``, set in ``app.handler_settings``), but waits forever for a request whose
headers never finish or whose body stops arriving: a few hundred such sockets hold as many file
descriptors for good. ``TimedAppRunner`` serves the app with a request handler that also closes
those connections, without an answer (nginx does the same):

- ``header_timeout``: from a request's first byte until its headers are complete;
- ``body_timeout``: while a request's body is still arriving, the longest stretch without a byte.

Neither runs while a handler works on a request or sends its answer, and a body that keeps flowing
is never cut off, however long it takes: a real client's polls and large uploads are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader

log = logging.getLogger("kf2v_mock")


class TimedRequestHandler(web.RequestHandler):
    """aiohttp's request handler (the connection's protocol) with the two timeouts above."""

    def __init__(self, manager: web.Server, *, header_timeout: float, body_timeout: float,
                 **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the request in progress's body, until it ends
        self._in_request = False
        self._last_data = 0.0

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self._last_data = loop.time()
        if data and not self._in_request and self._timer is None:
            self._timer = loop.call_later(self._header_timeout, self._headers_too_slow)
        super().data_received(data)

    def request_started(self, body: StreamReader) -> None:
        """Its headers are complete (called by ``TimedServer`` as the request is made)."""
        self._cancel_timer()
        self._in_request = True
        if not body.is_eof():
            self._body = body
            self._timer = asyncio.get_running_loop().call_later(self._body_timeout,
                                                                self._check_body)

    def request_finished(self) -> None:
        self._cancel_timer()
        self._in_request = False
        self._body = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        if not self._in_request:
            log.info("closing a connection from %s: no complete request headers in %g s",
                     _peer(self), self._header_timeout)
            self.force_close()

    def _check_body(self) -> None:
        self._timer = None
        if self._body is None or self._body.is_eof():
            return
        quiet = asyncio.get_running_loop().time() - self._last_data
        if quiet >= self._body_timeout:
            log.info("closing a connection from %s: its request body stalled for %g s",
                     _peer(self), self._body_timeout)
            self.force_close()
            return
        self._timer = asyncio.get_running_loop().call_later(self._body_timeout - quiet,
                                                            self._check_body)


def _peer(handler: web.RequestHandler) -> str:
    peer = handler.peername
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class TimedServer(web.Server):
    """A ``web.Server`` whose connections get a ``TimedRequestHandler``; it tells the handler
    when a request's headers are complete and when its application handler has returned."""

    def __init__(self, handler: Any, *, loop: asyncio.AbstractEventLoop, header_timeout: float,
                 body_timeout: float, **kwargs: Any):
        super().__init__(handler, loop=loop, **kwargs)
        kwargs.pop("request_factory", None)
        kwargs.pop("handler_cancellation", None)
        self._handler_kwargs = {"loop": loop, "header_timeout": header_timeout,
                                "body_timeout": body_timeout, **kwargs}
        make_request, handle = self.request_factory, self.request_handler

        def timed_request(message, payload, protocol, writer, task):
            if isinstance(protocol, TimedRequestHandler):
                protocol.request_started(payload)
            return make_request(message, payload, protocol, writer, task)

        async def timed_handle(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handle(request)
            finally:
                if isinstance(request.protocol, TimedRequestHandler):
                    request.protocol.request_finished()

        self.request_factory = timed_request
        self.request_handler = timed_handle

    def __call__(self) -> TimedRequestHandler:
        return TimedRequestHandler(self, **self._handler_kwargs)


class TimedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through a ``TimedServer``. ``handler_kwargs`` are what aiohttp
    passes each connection's handler (the app's ``handler_args`` and the runner's own)."""

    def __init__(self, app: web.Application, *, header_timeout: float, body_timeout: float,
                 handler_kwargs: dict[str, Any], **kwargs: Any):
        super().__init__(app, **kwargs)
        self._timeouts = {"header_timeout": header_timeout, "body_timeout": body_timeout}
        self._handler_kwargs = handler_kwargs

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the application's startup
        return TimedServer(plain.request_handler, request_factory=plain.request_factory,
                           handler_cancellation=plain.handler_cancellation,
                           loop=asyncio.get_running_loop(), **self._timeouts,
                           **self._handler_kwargs)
