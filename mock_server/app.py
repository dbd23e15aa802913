"""The aiohttp application factory and the two-listener server."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from .admin_access import admin_access
from .appkeys import EMULATOR
from .body_limits import body_limit
from .config import Settings
from .emulator import Emulator
from .media.fetch import guarded_session
from .middleware import request_context
from .regions import BEIJING, SINGAPORE
from .responses import HTTP_SESSION
from .urls import setup_routes

log = logging.getLogger("kf2v_mock")
SWEEP_INTERVAL = 1.0  # real seconds between sweeps of expired tasks while the clock runs


def create_app(settings: Settings | None = None, emulator: Emulator | None = None) -> web.Application:
    settings = settings or (emulator.settings if emulator else Settings())
    app = web.Application(middlewares=[request_context, admin_access, body_limit],
                          client_max_size=settings.max_body_bytes)
    app[EMULATOR] = emulator or Emulator(settings)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_expiry_sweeper)
    app.cleanup_ctx.append(_emulator_lifetime)
    setup_routes(app)
    return app


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    # Image downloads, under the URL address rules (media/fetch.py).
    async with guarded_session(app[EMULATOR].settings.image_url_rules()) as session:
        app[HTTP_SESSION] = session
        yield


async def _expiry_sweeper(app: web.Application) -> AsyncIterator[None]:
    emulator = app[EMULATOR]

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            emulator.sweep()

    task = asyncio.get_running_loop().create_task(sweep_forever())
    yield
    task.cancel()


async def _emulator_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[EMULATOR].close()


async def start_server(app: web.Application, settings: Settings) -> web.AppRunner:
    """Bind both regions' listeners (port 0 picks a free one) and write the ready file."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    emulator = app[EMULATOR]
    urls = {}
    for region, port in ((BEIJING, settings.beijing_port), (SINGAPORE, settings.singapore_port)):
        site = web.TCPSite(runner, settings.host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        emulator.listener_regions[bound] = region
        urls[region] = f"http://{_url_host(settings.host)}:{bound}/api/v1"
    for region, url in urls.items():
        log.info("%s listening on %s", region, url)
    if settings.ready_file:
        _write_atomically(settings.ready_file, json.dumps(urls))
    return runner


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
