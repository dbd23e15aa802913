"""The OSS stand-in's routes: path-style buckets on the emulator's own listeners."""

from __future__ import annotations

from aiohttp import web

from ..tasks.regions import REGIONS
from . import handlers


def setup_routes(app: web.Application) -> None:
    r = app.router
    result_buckets = "|".join(region.result_bucket for region in REGIONS.values())
    r.add_get(f"/{{bucket:{result_buckets}}}/{{key:.+}}", handlers.download)
    for region in REGIONS.values():
        r.add_post(f"/{region.upload_bucket}", handlers.upload)
        r.add_post(f"/{region.upload_bucket}/", handlers.upload)
    # Last: every other method or path under a bucket gets OSS's own refusal.
    buckets = "|".join(sorted(handlers.RESULT_BUCKETS | handlers.UPLOAD_BUCKETS))
    r.add_route("*", f"/{{bucket:{buckets}}}{{slash_key:(?:/.*)?}}", handlers.unserved)
