"""The web console (``/_mock/ui``): plain HTML, JS and CSS shipped in ``admin/ui/`` (package data;
no build step, nothing loaded from the network). The page reads only the admin API. ``/`` and
``/_mock/`` lead a browser there; API clients asking for ``/`` still get the DashScope 404.

The shell (these static files) holds no data. With an admin token configured it is served to any
peer, so a browser on another host can load the page, which then asks for the token and sends it
in ``X-Mock-Admin-Token`` on every call; everything it shows comes from the protected admin API.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

UI_DIR = Path(__file__).with_name("ui")
UI_PATH = "/_mock/ui"
FILES = {"console.js": "text/javascript", "console.css": "text/css"}
SHELL_PATHS = frozenset({UI_PATH, UI_PATH + "/", "/_mock", "/_mock/",
                         *(f"{UI_PATH}/{name}" for name in FILES)})
# Defence in depth: even a value that slipped into the page as markup could not run a script.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' blob: data:; media-src 'self' blob:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_shell(method: str, path: str) -> bool:
    """A GET of the console's static shell (no data in it)."""
    return method in ("GET", "HEAD") and path in SHELL_PATHS


async def page(request: web.Request) -> web.Response:
    return _file("index.html", "text/html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound()
    return _file(name, FILES[name])


def _file(name: str, content_type: str) -> web.Response:
    return web.Response(body=(UI_DIR / name).read_bytes(), content_type=content_type,
                        charset="utf-8", headers=SECURITY_HEADERS)


def _redirect() -> web.Response:
    # Returned, not raised: the error middleware turns raised HTTP exceptions into DashScope errors.
    return web.Response(status=302, headers={"Location": UI_PATH})


async def to_console(request: web.Request) -> web.Response:
    return _redirect()


async def root(request: web.Request) -> web.Response:
    """``/``: a browser (it asks for HTML) is sent to the console; anything else gets what an
    unknown path gets (the DashScope 404)."""
    if request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", ""):
        return _redirect()
    raise web.HTTPNotFound()
