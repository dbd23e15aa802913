"""The baseline of ``benchmarks/run.py``: a bare aiohttp app that answers the same paths with the same
bytes as kf2v-mock, doing nothing else (no middlewares, no access log).

    python benchmarks/bare_app.py READY_FILE GET_BODY_FILE CREATE_BODY_FILE

``GET /api/v1/tasks/{task_id}`` answers GET_BODY_FILE's bytes; ``POST`` to the create path reads
and parses the JSON body (as any server must) and answers CREATE_BODY_FILE's bytes. Listens on a
free loopback port and writes ``{"url": "http://127.0.0.1:PORT"}`` to READY_FILE once it does.
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

CREATE = "/api/v1/services/aigc/image2video/video-synthesis"
JSON_TYPE = "application/json"


def make_app(get_body: bytes, create_body: bytes) -> web.Application:
    async def get_task(request: web.Request) -> web.Response:
        return web.Response(body=get_body, content_type=JSON_TYPE, charset="utf-8")

    async def create(request: web.Request) -> web.Response:
        await request.json()
        return web.Response(body=create_body, content_type=JSON_TYPE, charset="utf-8")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/v1/tasks/{task_id}", get_task)
    app.router.add_post(CREATE, create)
    return app


async def main(ready: Path, get_body: bytes, create_body: bytes) -> None:
    runner = web.AppRunner(make_app(get_body, create_body), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps({"url": f"http://127.0.0.1:{port}"}))
    tmp.replace(ready)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ready_file, get_file, create_file = (Path(a) for a in sys.argv[1:4])
    try:
        asyncio.run(main(ready_file, get_file.read_bytes(), create_file.read_bytes()))
    except KeyboardInterrupt:
        pass
