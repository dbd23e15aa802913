"""The emulator on real sockets in a background thread with its own event loop, for code under test
that blocks (the SDK, ``requests``) or runs its own loop. The pytest plugin and the emulator's own
tests use it; anyone can::

    with EmbeddedServer(Settings(beijing_port=0, singapore_port=0)) as server:
        server.urls["cn-beijing"]   # http://127.0.0.1:<port>/api/v1
        server.advance(30)          # move the virtual clock, waiting until it has moved
        server.start_proxy()        # the intercepting proxy: (its URL, the CA file)

Every control method runs on the server's loop and returns once it has taken effect there, so a
request sent right after ``freeze()`` already sees the frozen clock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable

from aiohttp import web

from ..app import base_urls, create_app, proxy_info, start_proxy, start_server
from ..config import Settings
from ..emulator import Emulator
from ..pipeline.keys import EMULATOR

START_TIMEOUT = 30.0  # seconds for both listeners to bind
CALL_TIMEOUT = 120.0  # seconds a control call may take (drain() waits for renders)


class EmbeddedServer:
    def __init__(self, settings: Settings,
                 wrap_app: Callable[[web.Application], web.Application] | None = None):
        """``wrap_app`` may add middlewares to the app before it starts (a test harness's checks)."""
        self.settings = settings
        self._wrap_app = wrap_app
        self.urls: dict[str, str] = {}
        self.proxy_url: str | None = None  # set once the proxy runs (start_proxy())
        self.ca_file: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._emulator: Emulator | None = None

    # --- lifetime --------------------------------------------------------------------------------
    def start(self) -> "EmbeddedServer":
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def boot() -> None:
            app = create_app(self.settings)
            if self._wrap_app is not None:
                app = self._wrap_app(app)
            self._runner = await start_server(app, self.settings)
            self._emulator = app[EMULATOR]

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # reported to start()'s caller, not lost in the thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=main, name="kf2v-mock", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError("kf2v-mock did not start")
        if failure:
            self._thread.join()
            loop.close()
            raise RuntimeError(f"kf2v-mock did not start: {failure[0]!r}") from failure[0]
        self.urls = base_urls(self.emulator)
        if self.settings.proxy_port is not None:
            self.start_proxy()
        return self

    def start_proxy(self) -> tuple[str, str]:
        """Start the intercepting proxy (once; on ``settings.proxy_port``, else a free port) and
        return its URL (``http://127.0.0.1:<port>``, for ``HTTPS_PROXY``) and the CA file clients
        must trust."""
        async def start():
            return proxy_info(await start_proxy(self._runner, self.settings))
        info = self.run(start)
        self.proxy_url, self.ca_file = info["url"], info["ca_file"]
        return self.proxy_url, self.ca_file

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(CALL_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # --- reading ---------------------------------------------------------------------------------
    @property
    def emulator(self) -> Emulator:
        if self._emulator is None:
            raise RuntimeError("the server is not started")
        return self._emulator

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    def root_url(self, region: str) -> str:
        """``http://host:port`` of ``region``'s listener (``/_mock/...`` lives there)."""
        return self.urls[region].removesuffix("/api/v1")

    # --- control (each waits until applied on the server's loop) ---------------------------------
    def run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run the coroutine ``make()`` on the server's loop and return its result."""
        async def wrapper():
            return await make()
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(CALL_TIMEOUT)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call ``function(*args)`` on the server's loop (the emulator is not thread-safe)."""
        async def call():
            return function(*args)
        return self.run(call)

    def advance(self, seconds: float) -> None:
        self.call(self.emulator.clock.advance, seconds)

    def freeze(self, frozen: bool = True) -> None:
        self.call(self.emulator.clock.freeze, frozen)

    def drain(self) -> None:
        """Wait until every accepted render (and file deletion) has finished."""
        self.run(self.emulator.synthesizer.drain)

    def reset(self) -> None:
        self.run(self.emulator.reset)
