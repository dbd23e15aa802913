"""The admin API's routes (``/_mock/...``, on every listener), the console under ``/_mock/ui`` and
the pointer to it at ``/``."""

from __future__ import annotations

from aiohttp import web

from . import console, handlers, report_handlers, samples


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_mock/health", handlers.health)
    r.add_get("/_mock/clock", handlers.get_clock)
    r.add_post("/_mock/clock", handlers.post_clock)
    r.add_post("/_mock/reset", handlers.reset)
    r.add_get("/_mock/tasks", handlers.list_all_tasks)
    r.add_get("/_mock/tasks/{task_id}", handlers.get_task)
    r.add_get("/_mock/tasks/{task_id}/frames/{which:first|last}", handlers.get_task_frame)
    r.add_get("/_mock/tasks/{task_id}/video", handlers.get_task_video)
    r.add_get("/_mock/faults", handlers.list_faults)
    r.add_post("/_mock/faults", handlers.add_fault)
    r.add_delete("/_mock/faults", handlers.clear_faults)
    r.add_get("/_mock/faults/presets", handlers.fault_presets)
    r.add_delete("/_mock/faults/{rule_id}", handlers.delete_fault)
    r.add_get("/_mock/requests", handlers.list_requests)
    r.add_get("/_mock/requests/{request_id}", handlers.get_request)
    r.add_delete("/_mock/requests", handlers.clear_requests)
    r.add_get("/_mock/scenarios", handlers.list_scenarios)
    # Sample frames (admin/samples.py): readable by any peer (admin/access.py).
    r.add_get("/_mock/samples", samples.list_samples)
    r.add_get("/_mock/samples/{file}", samples.sample_file)
    # The client report card and the seeded chaos run (report_handlers.py).
    r.add_get("/_mock/report", report_handlers.get_report)
    r.add_get("/_mock/chaos", report_handlers.get_chaos)
    r.add_post("/_mock/chaos", report_handlers.start_chaos)
    r.add_delete("/_mock/chaos", report_handlers.stop_chaos)
    # The console: the page, its two assets, and the ways a browser finds it.
    r.add_get(console.UI_PATH, console.page)
    r.add_get(console.UI_PATH + "/", console.page)
    r.add_get(console.UI_PATH + "/{name}", console.asset)
    r.add_get("/_mock", console.to_console)
    r.add_get("/_mock/", console.to_console)
    r.add_route("*", "/", console.root)
