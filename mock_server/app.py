"""The aiohttp application factory (middlewares, every package's routes, long-lived resources in
``cleanup_ctx``) and the two-listener server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from .admin import routes as admin_routes
from .admin.access import admin_access
from .api import routes as api_routes
from .api.image_fetch import guarded_session
from .config import Settings
from .emulator import Emulator
from .oss import routes as oss_routes
from .pipeline.body_limit import body_limit
from .pipeline.context import request_context
from .pipeline.keys import EMULATOR, HTTP_SESSION
from .pipeline.shaping import traffic_shaping
from .proxy.authority import CertificateAuthority, ca_dir_for
from .proxy.listener import ProxySite, proxy_site
from .tasks.regions import BEIJING, SINGAPORE
from .timeouts import TimedAppRunner

log = logging.getLogger("kf2v_mock")
SWEEP_INTERVAL = 1.0  # real seconds between sweeps of expired tasks while the clock runs
# Sweeps between store checkpoints (in a worker thread: they fsync). Every sweep: the WAL then
# holds about a second of writes (store/sqlite.py).
CHECKPOINT_EVERY = 1


def create_app(settings: Settings | None = None, emulator: Emulator | None = None) -> web.Application:
    settings = settings or (emulator.settings if emulator else Settings())
    # Outermost first: every request gets an id and a region, /_mock/ its access check, bodies their
    # cap, and API/OSS requests their traffic shaping (scenarios, quotas, faults), in that order.
    app = web.Application(middlewares=[request_context, admin_access, body_limit, traffic_shaping],
                          client_max_size=settings.max_body_bytes,
                          handler_args=handler_settings(settings))
    app[EMULATOR] = emulator or Emulator(settings)
    # Started first and cleaned up last: nothing may use the emulator after it is closed.
    app.cleanup_ctx.append(_emulator_lifetime)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_expiry_sweeper)
    api_routes.setup_routes(app)
    admin_routes.setup_routes(app)
    oss_routes.setup_routes(app)  # last: it ends with a catch-all under its buckets
    return app


def handler_settings(settings: Settings) -> dict:
    """What aiohttp's per-connection handler is given: no decompression of request bodies
    (pipeline/bodies.py decodes them, so a lying Content-Encoding is a DashScope 400, not a server
    error) and the idle timeout between requests (timeouts.py has the other two)."""
    return {"auto_decompress": False, "keepalive_timeout": settings.idle_timeout}


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    # Image downloads, under the URL address rules (api/image_fetch.py).
    async with guarded_session(app[EMULATOR].settings.image_url_rules()) as session:
        app[HTTP_SESSION] = session
        yield


async def _expiry_sweeper(app: web.Application) -> AsyncIterator[None]:
    emulator = app[EMULATOR]

    async def sweep_forever() -> None:
        loop = asyncio.get_running_loop()
        for count in itertools.count(1):
            await asyncio.sleep(SWEEP_INTERVAL)
            try:  # a store that fails now and then must not end the sweeping for good
                emulator.sweep()
                if count % CHECKPOINT_EVERY == 0:
                    await loop.run_in_executor(None, emulator.checkpoint)
            except Exception:
                log.exception("expiry sweep or store checkpoint failed; trying again")

    task = asyncio.get_running_loop().create_task(sweep_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _emulator_lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[EMULATOR].start()
    yield
    await app[EMULATOR].close()


class ListenError(Exception):
    """A region's listener could not be bound (the port is taken, the host is not ours, ...)."""

    def __init__(self, region: str, host: str, port: int, cause: OSError):
        super().__init__(f"{region} on {host}:{port}: {cause}")
        self.region, self.host, self.port, self.cause = region, host, port, cause


class ReadyFileError(OSError):
    """The ready file could not be written."""


async def start_server(app: web.Application, settings: Settings) -> web.AppRunner:
    """Bind both regions' listeners (port 0 picks a free one) and write the ready file. On failure
    everything started is stopped again (the data dir is released) before the error is raised."""
    runner = TimedAppRunner(app, access_log=None, handle_signals=False,
                            header_timeout=settings.header_timeout,
                            body_timeout=settings.body_timeout,
                            handler_kwargs={**handler_settings(settings), "access_log": None})
    try:
        await runner.setup()
        emulator = app[EMULATOR]
        for region, port in ((BEIJING, settings.beijing_port), (SINGAPORE, settings.singapore_port)):
            site = web.TCPSite(runner, settings.host, port)
            try:
                await site.start()
            except OSError as exc:
                raise ListenError(region, settings.host, port, exc) from exc
            bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            emulator.listener_regions[bound] = region
        urls = base_urls(emulator)
        ready: dict[str, object] = dict(urls)
        if settings.proxy_port is not None:
            proxy = await start_proxy(runner, settings)
            ready["proxy"] = proxy_info(proxy)
        if settings.ready_file:
            try:
                _write_atomically(settings.ready_file, json.dumps(ready))
            except OSError as exc:
                raise ReadyFileError(exc.errno, exc.strerror, str(settings.ready_file)) from exc
    except BaseException:
        await runner.cleanup()
        raise
    for region, url in urls.items():  # once everything is up: a failed start is one line
        log.info("%s listening on %s", region, url)
    return runner


async def start_proxy(runner: web.AppRunner, settings: Settings) -> ProxySite:
    """Start the intercepting proxy on ``runner`` (once; later calls return the running one)."""
    running = proxy_site(runner)
    if running is not None:
        return running
    directory = ca_dir_for(settings.ca_dir, settings.data_dir)
    loop = asyncio.get_running_loop()
    authority = await loop.run_in_executor(None, CertificateAuthority.open, directory)
    if authority.created:
        log.info("made a new local CA in %s (trust it: `kf2v-mock ca`)", directory)
    site = ProxySite(runner, settings.proxy_host, settings.proxy_port or 0, authority)
    try:
        await site.start()
    except OSError as exc:
        raise ListenError("proxy", settings.proxy_host, settings.proxy_port or 0, exc) from exc
    log.info("intercepting proxy on %s (CA %s)", site.url, authority.cert_path)
    return site


def proxy_info(site: ProxySite) -> dict[str, str]:
    """What the ready file says about the proxy: its URL and the CA file clients must trust."""
    return {"url": site.url, "ca_file": str(site.authority.cert_path)}


def base_urls(emulator: Emulator) -> dict[str, str]:
    """``{region: "http://host:port/api/v1"}`` of the bound listeners (what the SDK is given)."""
    host = _url_host(emulator.settings.host)
    return {region: f"http://{host}:{port}/api/v1" for port, region in emulator.listener_regions.items()}


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
