"""The DashScope API's routes (``/api/v1/...``)."""

from __future__ import annotations

from aiohttp import web

from ..pipeline.keys import CLIENT_ANSWER
from . import handlers

API = "/api/v1"


def setup_routes(app: web.Application) -> None:
    app[CLIENT_ANSWER] = handlers.client_answer  # the console shows it (admin/ cannot import api/)
    r = app.router
    # Create: the documented kf2v path, and the path the SDK's 2.0 client hard-codes for every
    # video model (ASSUMPTION: the real service serves kf2v models there too).
    r.add_post(f"{API}/services/aigc/image2video/video-synthesis", handlers.create_task)
    r.add_post(f"{API}/services/aigc/video-generation/video-synthesis", handlers.create_task)
    # Tasks: trailing slashes are tolerated (the aio SDK sends them).
    for suffix in ("", "/"):
        r.add_get(f"{API}/tasks{suffix}", handlers.list_tasks)
        r.add_get(f"{API}/tasks/{{task_id}}{suffix}", handlers.get_task)
        r.add_post(f"{API}/tasks/{{task_id}}/cancel{suffix}", handlers.cancel_task)
        r.add_get(f"{API}/uploads{suffix}", handlers.get_upload_policy)
