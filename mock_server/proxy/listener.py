"""The proxy listener, as one more site of the emulator's ``web.AppRunner`` (``runner.cleanup()``
stops it with the region listeners).

A connection starts with one request head, read here:

- ``CONNECT host:443`` for an intercepted host: ``200``, then TLS with a certificate for that host,
  and the decrypted connection is handed to the emulator's HTTP server;
- any other request (``GET http://dashscope.aliyuncs.com/...``): the connection is handed over as
  it is;
- a ``CONNECT`` for any other host or port: ``403`` and the connection closes. No connection to it,
  nor a name lookup, is ever attempted.

Handed-over connections are parsed by aiohttp (keep-alive, bodies, streaming as on any listener).
Each request is checked here once more (its host must be intercepted; inside a tunnel it must be
the tunnel's host), brought into the shape the listeners get (origin-form, ``Host`` = the target;
an OSS bucket host's path gets its bucket in front, path-style), marked ``INTERCEPTED`` and passed to
the application's own handler: the same middlewares, routes and handlers answer it, and the
application's admin-access rules see the real client address.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .. import EMULATOR_HEADER, __version__
from ..pipeline.keys import INTERCEPTED
from ..tasks.regions import bare_host, bucket_for_host
from .authority import CertificateAuthority
from .contexts import ServerContexts
from .hosts import HTTPS_PORT, intercepted, refusal

log = logging.getLogger("kf2v_mock.proxy")
HEAD_LIMIT = 16 * 1024  # bytes of the first request head
HEAD_TIMEOUT = 30.0  # seconds for a new connection to send its first request head
HANDSHAKE_TIMEOUT = 15.0  # seconds for the TLS handshake inside a tunnel
SHUTDOWN_TIMEOUT = 10.0  # seconds requests in flight get when the proxy stops
_TARGET: web.RequestKey[str] = web.RequestKey("proxy_target", str)
_PROXY_HEADERS = ("Proxy-Authorization", "Proxy-Connection")  # meant for the proxy, not the app


class ProxySite(web.BaseSite):
    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 authority: CertificateAuthority):
        super().__init__(runner)
        self._host, self._port = host, port
        self.authority = authority
        self._contexts = ServerContexts(authority)
        self._http: _HandedOver | None = None
        self._base: web.Server | None = None  # the runner's server: the application's handler
        # Connections whose first request head is still being read, and their TLS handshakes.
        self._opening: set[_Opening] = set()
        self._handshakes: set[asyncio.Task] = set()

    @property
    def name(self) -> str:
        return self.url

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``: what ``HTTPS_PROXY`` is set to."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        if host == "::":
            host = "::1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        self._base = self._runner.server
        self._http = _HandedOver(self._handle, request_factory=self._make_request,
                                 access_log=None)  # the emulator logs each request itself
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Opening(self), self._host, self._port)

    async def stop(self) -> None:
        await super().stop()  # no new connections
        for opening in list(self._opening):
            opening.abort()
        for task in list(self._handshakes):
            task.cancel()
        if self._http is not None:
            self._http.pre_shutdown()
            await self._http.shutdown(SHUTDOWN_TIMEOUT)

    # --- connections ----------------------------------------------------------------------------
    def connect(self, opening: "_Opening", target: str) -> None:
        host, _, port = target.rpartition(":")
        host = host.lower().rstrip(".")
        if not host or not port.isdigit():
            opening.refuse(400, "Bad Request", "kf2v-mock proxy: CONNECT needs host:port.\n")
        elif int(port) != HTTPS_PORT or not intercepted(host):
            log.warning("refused CONNECT %s from %s: not a host the emulator answers "
                        "(nothing was sent to it)", target, opening.peer)
            opening.refuse(403, "Forbidden", refusal(target))
        else:
            opening.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            task = asyncio.get_running_loop().create_task(self._tunnel(opening, host))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _tunnel(self, opening: "_Opening", host: str) -> None:
        loop = asyncio.get_running_loop()
        early = _EarlyData()
        try:
            context = await self._contexts.for_host(host)
            tls = await loop.start_tls(opening.transport, early, context, server_side=True,
                                       ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            log.warning("TLS for %s with %s failed (%s): does the client trust the kf2v-mock CA "
                        "(%s)? See `kf2v-mock ca`", host, opening.peer,
                        str(exc) or type(exc).__name__, self.authority.cert_path)
            opening.abort()
            return
        finally:
            self._opening.discard(opening)
        if early.lost:
            tls.abort()
            return
        self.hand_over(tls, early.data, tunnel=host)
        if early.eof:
            tls.get_protocol().eof_received()

    def hand_over(self, transport: asyncio.Transport, data: bytes, tunnel: str | None = None) -> None:
        """Let the HTTP server parse ``transport`` from here on, ``data`` first."""
        assert self._http is not None
        handler = self._http()
        if tunnel is not None:
            self._http.tunnels[handler] = tunnel
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if data:
            handler.data_received(data)

    # --- requests on handed-over connections ----------------------------------------------------
    def _make_request(self, message: RawRequestMessage, payload, protocol, writer, task):
        tunnel = self._http.tunnels.get(protocol)
        if message.url.absolute:
            target = (message.url.host or "").lower().rstrip(".")
        else:
            host_header = message.headers.get("Host")
            target = bare_host(host_header) if host_header else (tunnel or "")
        request = self._base.request_factory(_as_served(message, target), payload, protocol,
                                             writer, task)
        request[_TARGET] = target
        return request

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        target = request[_TARGET]
        tunnel = self._http.tunnels.get(request.protocol)
        if request.method == "CONNECT":
            return _text(400, "kf2v-mock proxy: send CONNECT as the first request of a "
                              "connection.\n")
        if tunnel is not None and target != tunnel:
            return _text(421, f"kf2v-mock proxy: this connection is a tunnel to {tunnel}, not "
                              f"{target}.\n")
        if not intercepted(target):
            log.warning("refused %s %s from %s: not a host the emulator answers (nothing was "
                        "sent to it)", request.method, target, request.remote)
            return _text(403, refusal(target or "a request without a host"))
        request[INTERCEPTED] = True
        return await self._base.request_handler(request)


class _HandedOver(web.Server):
    """The HTTP server of handed-over connections; it knows which of them are tunnels, and to
    which host."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tunnels: dict[object, str] = {}  # request handler (one per connection) -> host

    def connection_lost(self, handler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.tunnels.pop(handler, None)


def _as_served(message: RawRequestMessage, target: str) -> RawRequestMessage:
    """``message`` as a listener would get it: origin-form, ``Host`` = ``target``, and for an OSS
    bucket host the bucket in front of the path (the stand-in's routes are path-style)."""
    url = message.url.relative() if message.url.absolute else message.url
    bucket = bucket_for_host(target)
    if bucket is not None:
        url = URL.build(path=f"/{bucket}{url.raw_path}", query_string=url.raw_query_string,
                        encoded=True)
    headers = CIMultiDict(message.headers)
    for name in _PROXY_HEADERS:
        headers.popall(name, None)
    if target:
        headers["Host"] = target
    raw_headers = tuple((k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                        for k, v in headers.items())
    return message._replace(path=str(url), url=url, headers=CIMultiDictProxy(headers),
                            raw_headers=raw_headers)


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text,
                        headers={EMULATOR_HEADER: f"kf2v-mock/{__version__}"})


class _Opening(asyncio.Protocol):
    """A new connection until its first request head is read."""

    def __init__(self, site: ProxySite):
        self.site = site
        self.buffer = bytearray()
        self.transport: asyncio.Transport
        self.peer = "?"
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.site._opening.add(self)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, self.abort)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > HEAD_LIMIT:
                self.refuse(431, "Request Header Fields Too Large",
                            "kf2v-mock proxy: the request head is too large.\n")
            return
        self._stop_timer()
        self.transport.pause_reading()
        request_line = bytes(self.buffer[:self.buffer.find(b"\r\n")]).decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) == 3 and parts[0] == "CONNECT":
            if len(self.buffer) > end + 4:  # the client did not wait for the tunnel
                self.refuse(400, "Bad Request", "kf2v-mock proxy: data sent before the tunnel "
                                                "was established.\n")
            else:
                self.site.connect(self, parts[1])
            return
        self.site._opening.discard(self)
        self.site.hand_over(self.transport, bytes(self.buffer))
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.site._opening.discard(self)

    def refuse(self, status: int, reason: str, text: str) -> None:
        body = text.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            f"{EMULATOR_HEADER}: kf2v-mock/{__version__}\r\n\r\n".encode() + body)
        self.transport.close()

    def abort(self) -> None:
        self._stop_timer()
        self.transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _EarlyData(asyncio.Protocol):
    """Holds what arrives between the end of the TLS handshake and the hand-over."""

    def __init__(self):
        self.data = b""
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.eof = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def proxy_site(runner: web.BaseRunner) -> ProxySite | None:
    """The runner's proxy, if it has one."""
    return next((site for site in runner.sites if isinstance(site, ProxySite)), None)
