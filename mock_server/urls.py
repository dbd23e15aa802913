"""Every route the emulator answers, in one place."""

from __future__ import annotations

from aiohttp import web

from . import admin, oss_handlers, responses
from .regions import REGIONS

API = "/api/v1"

# Which API endpoint each handler serves: fault rules match on it and the journal records it.
ENDPOINT_OF = {
    responses.create_task: "create",
    responses.get_task: "query",
    responses.list_tasks: "list",
    responses.cancel_task: "cancel",
    responses.get_upload_policy: "get_policy",
    oss_handlers.upload: "upload",
    oss_handlers.download: "download",
}


def endpoint_of(request: web.Request) -> str | None:
    """The API endpoint a request was routed to; None for ``/_mock/`` and unknown paths."""
    return ENDPOINT_OF.get(request.match_info.handler)  # type: ignore[arg-type]


def setup_routes(app: web.Application) -> None:
    r = app.router
    # Create: the documented kf2v path, and the path the SDK's 2.0 client hard-codes for every
    # video model (ASSUMPTION: the real service serves kf2v models there too).
    r.add_post(f"{API}/services/aigc/image2video/video-synthesis", responses.create_task)
    r.add_post(f"{API}/services/aigc/video-generation/video-synthesis", responses.create_task)
    # Tasks: trailing slashes are tolerated (the aio SDK sends them).
    for suffix in ("", "/"):
        r.add_get(f"{API}/tasks{suffix}", responses.list_tasks)
        r.add_get(f"{API}/tasks/{{task_id}}{suffix}", responses.get_task)
        r.add_post(f"{API}/tasks/{{task_id}}/cancel{suffix}", responses.cancel_task)
        r.add_get(f"{API}/uploads{suffix}", responses.get_upload_policy)
    # OSS stand-in, path-style buckets: result links and the upload host.
    result_buckets = "|".join(region.result_bucket for region in REGIONS.values())
    r.add_get(f"/{{bucket:{result_buckets}}}/{{key:.+}}", oss_handlers.download)
    for region in REGIONS.values():
        r.add_post(f"/{region.upload_bucket}", oss_handlers.upload)
        r.add_post(f"/{region.upload_bucket}/", oss_handlers.upload)
    # Admin.
    r.add_get("/_mock/health", admin.health)
    r.add_get("/_mock/clock", admin.get_clock)
    r.add_post("/_mock/clock", admin.post_clock)
    r.add_post("/_mock/reset", admin.reset)
    r.add_get("/_mock/tasks", admin.list_all_tasks)
    r.add_get("/_mock/faults", admin.list_faults)
    r.add_post("/_mock/faults", admin.add_fault)
    r.add_delete("/_mock/faults", admin.clear_faults)
    r.add_delete("/_mock/faults/{rule_id}", admin.delete_fault)
    r.add_get("/_mock/requests", admin.list_requests)
    r.add_delete("/_mock/requests", admin.clear_requests)
    r.add_get("/_mock/scenarios", admin.list_scenarios)
