"""Who may use the admin API (``/_mock/...``): it can reset every task, move the clock and dump
every account's tasks, so it answers loopback peers only, unless an admin token is configured
(``--admin-token`` / ``KF2V_MOCK_ADMIN_TOKEN``): then a peer from anywhere that sends the token in
``X-Mock-Admin-Token`` is let in too. Everything else gets 403 ``AccessDenied``.

The peer is the socket's address (``request.remote``), never a forwarding header: an emulator
behind a reverse proxy on the same machine sees the proxy, so set a token there.

The sample frames (``GET /_mock/samples...``) are the exception: static images any peer may read,
so a client on another machine can get its first task through.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from ..pipeline.keys import EMULATOR
from ..tasks.errors import DashScopeError
from .console import is_shell

ADMIN_PREFIX = "/_mock/"
TOKEN_HEADER = "X-Mock-Admin-Token"
PUBLIC_PREFIX = "/_mock/samples"  # read-only and harmless: open to every peer


def is_loopback_peer(remote: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else, including an
    unknown peer (fail closed)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def admin_allowed(remote: str | None, sent_token: str | None, token: str | None) -> bool:
    if is_loopback_peer(remote):
        return True
    if not token or not sent_token:
        return False
    return hmac.compare_digest(sent_token.encode(), token.encode())


@web.middleware
async def admin_access(request: web.Request, handler) -> web.StreamResponse:
    public = request.method in ("GET", "HEAD") and (
        request.path == PUBLIC_PREFIX or request.path.startswith(PUBLIC_PREFIX + "/"))
    if (request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/")) and not public:
        token = request.app[EMULATOR].settings.admin_token
        # The console's static shell holds no data: with a token set, any peer may load it (the
        # page then asks for the token and sends it with every admin call).
        if token and is_shell(request.method, request.path):
            return await handler(request)
        if not admin_allowed(request.remote, request.headers.get(TOKEN_HEADER), token):
            sent = request.headers.get(TOKEN_HEADER)
            raise DashScopeError.of("access_denied", reason=(
                f"/_mock/ answers loopback peers only, and {request.remote} is not one "
                "(start with --admin-token and send X-Mock-Admin-Token)" if not token else
                f"{request.remote} is not a loopback peer and "
                + ("sent a wrong X-Mock-Admin-Token" if sent else "sent no X-Mock-Admin-Token")))
    return await handler(request)
