"""The admin API's routes (``/_mock/...``, on every listener)."""

from __future__ import annotations

from aiohttp import web

from . import handlers, samples


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_mock/health", handlers.health)
    r.add_get("/_mock/clock", handlers.get_clock)
    r.add_post("/_mock/clock", handlers.post_clock)
    r.add_post("/_mock/reset", handlers.reset)
    r.add_get("/_mock/tasks", handlers.list_all_tasks)
    r.add_get("/_mock/faults", handlers.list_faults)
    r.add_post("/_mock/faults", handlers.add_fault)
    r.add_delete("/_mock/faults", handlers.clear_faults)
    r.add_delete("/_mock/faults/{rule_id}", handlers.delete_fault)
    r.add_get("/_mock/requests", handlers.list_requests)
    r.add_delete("/_mock/requests", handlers.clear_requests)
    r.add_get("/_mock/scenarios", handlers.list_scenarios)
    # Sample frames (admin/samples.py): readable by any peer (admin/access.py).
    r.add_get("/_mock/samples", samples.list_samples)
    r.add_get("/_mock/samples/{file}", samples.sample_file)
