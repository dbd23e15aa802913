"""``/_mock/report`` (the client report card) and ``/_mock/chaos`` (the seeded chaos run)."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import TYPE_CHECKING

from aiohttp import web

from ..pipeline.answers import json_response
from ..pipeline.keys import EMULATOR
from ..report.card import FILTERS, build_report
from ..report.facts import TaskFacts
from ..report.thresholds import NAMES as THRESHOLDS
from ..report.thresholds import Thresholds
from ..tasks.errors import DashScopeError
from ..tasks.timestamps import parse_iso
from ..traffic.chaos import PROFILES, ChaosRun, profiles

if TYPE_CHECKING:
    from ..emulator import Emulator

CHAOS_SOURCE = "scenario:chaos:"  # what shaping names the fault rules a chaos draw installs


async def get_report(request: web.Request) -> web.Response:
    """``GET /_mock/report[?key_id=&account=&since=&region=&final=true&<threshold>=<value>]``."""
    query = request.query
    unknown = set(query) - {*FILTERS, "final", *THRESHOLDS}
    if unknown:
        raise DashScopeError.mock(f"unknown report parameter(s): {', '.join(sorted(unknown))}; "
                                  f"use {', '.join((*FILTERS, 'final', *THRESHOLDS))}")
    try:
        thresholds = Thresholds().with_overrides({k: query[k] for k in THRESHOLDS if k in query})
        filters: dict = {k: query[k] for k in FILTERS if query.get(k)}
        if "since" in filters:
            # An unencoded "+08:00" in a URL arrives as " 08:00".
            filters["since"] = parse_iso(re.sub(r" (\d{2}:\d{2})$", r"+\1", filters["since"]))
    except ValueError as exc:
        raise DashScopeError.mock(f"bad report parameter: {exc}") from None
    final = query.get("final", "").strip().lower() in ("1", "true", "yes", "on")
    card = await report_for(request.app[EMULATOR], final=final, thresholds=thresholds,
                            filters=filters)
    return json_response(card)


async def report_for(emulator: "Emulator", *, final: bool = False,
                     thresholds: Thresholds | None = None, filters: dict | None = None) -> dict:
    """The card's JSON for this emulator now (also what ``kf2v-mock run --report`` prints)."""
    # Gather on the loop (the store and the journal are the loop's), judge in a worker thread.
    now = emulator.clock.now()
    journal = emulator.journal.entries(brief="true")  # the summary and the client facts
    tasks = {}
    for task_id in {e["task_id"] for e in journal if e.get("task_id")}:
        task = emulator.service.find(task_id)  # with its derived start
        if task is not None:
            tasks[task_id] = TaskFacts.from_task(task, now)
    chaos = emulator.chaos.describe() if emulator.chaos is not None else None
    rules = [json.loads(json.dumps(r)) for r in emulator.faults.rules()] if chaos else None
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(
        build_report, journal, tasks, now, final=final, thresholds=thresholds, filters=filters,
        chaos=chaos, fault_rules=rules))


async def get_chaos(request: web.Request) -> web.Response:
    chaos = request.app[EMULATOR].chaos
    return json_response({"enabled": chaos is not None,
                          **(chaos.describe() if chaos is not None else {}),
                          "profiles": profiles()})


async def start_chaos(request: web.Request) -> web.Response:
    """``POST /_mock/chaos {"seed": N, "profile"?: NAME, "label"?: TEXT}``: a chaos run from its
    first create (replacing any other one and the fault rules it installed)."""
    emulator = request.app[EMULATOR]
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, RecursionError):
        raise DashScopeError.of("invalid_body") from None
    if not isinstance(body, dict) or set(body) - {"seed", "profile", "label"}:
        raise DashScopeError.mock('send {"seed": N, "profile": NAME, "label": TEXT}')
    seed, profile, label = body.get("seed"), body.get("profile", "default"), body.get("label", "")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DashScopeError.mock("seed must be an integer")
    if profile not in PROFILES:
        raise DashScopeError.mock(f"profile must be one of {', '.join(PROFILES)}")
    if not isinstance(label, str):
        raise DashScopeError.mock("label must be a string")
    _forget_chaos_rules(emulator)
    emulator.chaos = ChaosRun(seed, profile, label=label, timing=emulator.settings.timing)
    return json_response({"enabled": True, **emulator.chaos.describe()})


async def stop_chaos(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    _forget_chaos_rules(emulator)
    emulator.chaos = None
    return json_response({"enabled": False})


def _forget_chaos_rules(emulator) -> None:
    for rule in emulator.faults.rules():
        if str(rule.get("source", "")).startswith(CHAOS_SOURCE):
            emulator.faults.delete(rule["id"])
