"""``traffic_shaping``, the middleware that applies the traffic models (``mock_server/traffic``) to
API and OSS requests before their handler runs: in-band scenarios, rate quotas and fault rules. An
error answers at once; a ``disconnect`` or ``truncate`` is carried out by ``request_context``."""

from __future__ import annotations

from aiohttp import web

from ..tasks.accounts import bearer_key
from ..tasks.errors import DashScopeError
from ..traffic import scenarios
from ..traffic.faults import FaultPlan, RequestContext, error_of
from .bodies import read_json_body
from .context import Disconnect
from .endpoints import endpoint_of
from .keys import (APPLIED, FAULT_PLAN, NOTES, QUOTA, REGION, REQUEST_ID, TASK_ID,
                   TRUNCATE, emulator_of, values_of)


@web.middleware
async def traffic_shaping(request: web.Request, handler) -> web.StreamResponse:
    endpoint = endpoint_of(request)
    if endpoint is None:
        return await handler(request)
    emulator = emulator_of(request)
    settings = emulator.settings
    values = values_of(request)
    task_id = _task_id_of(request, endpoint)
    if task_id is not None:
        values[TASK_ID] = task_id
    header = request.headers.get(scenarios.HEADER)
    creating = endpoint == "create"
    if not (creating or header or settings.quotas or emulator.store.fault_rules()):
        # Nothing can act on this request (a poll, usually): no scenario, quota or fault rule.
        return await handler(request)
    ctx = await _context(request, endpoint, task_id)
    chosen = scenarios.Selected()
    if settings.scenarios:
        chosen = scenarios.select(header, ctx.prompt, endpoint)
    # --- chaos (traffic/chaos.py): each create draws its hard paths as one more scenario ---
    if emulator.chaos is not None and creating:
        chosen.add(*emulator.chaos.draw_create(values[REQUEST_ID]), endpoint,
                   f"the chaos run (seed {emulator.chaos.seed})")
    applied = values[APPLIED] = [f"scenario:{name}" for name in chosen.names]
    notes = values.get(NOTES)
    if notes is None:
        notes = values[NOTES] = []
    notes += chosen.notes
    rules = emulator.faults.select(ctx, terminal_taken=chosen.terminal is not None)
    applied += rules.rule_ids
    notes += rules.notes
    terminal = chosen.terminal or rules.terminal
    # The gateway counts a request against its rate before anything behind it can fail; an
    # injected error or disconnect stands in for the whole service and is never counted, so a
    # times=2 throttle rule gives exactly two 429s (docs/assumptions.md "What counts against a rate").
    account = emulator.keys.lookup(request.headers.get("Authorization"), ctx.region)
    throttled = None
    if settings.quotas and account is not None and (terminal is None or terminal[0] == "truncate"):
        try:
            request[QUOTA] = emulator.quotas.admit(account, endpoint, ctx.model)
        except DashScopeError as error:
            throttled = error
    wait_ms = chosen.delay_ms + rules.delay_ms
    if wait_ms:  # the rules that fired were applied: their delays hold for a 429 too
        await emulator.sleep(wait_ms / 1000)
    if throttled is not None:
        raise throttled
    if terminal is not None:
        kind, action = terminal
        if kind == "error":
            raise error_of(action)
        if kind == "disconnect":
            raise Disconnect()
        values[TRUNCATE] = action["bytes"]
    values[FAULT_PLAN] = FaultPlan(emulator.faults, ctx, scenario_failure=chosen.task_failure,
                                   applied=applied, notes=notes,
                                   scenario_timing=chosen.task_timing)
    response = await handler(request)
    if chosen.task_rules and creating and response.status == 200:
        for name, rule in chosen.task_rules:
            installed = emulator.faults.add(rule, source=f"scenario:{name}",
                                            match={"task_id": values[TASK_ID]})
            applied.append(installed["id"])
            notes.append(f"scenario {name} installed fault rule {installed['id']} for task "
                         f"{values[TASK_ID]}")
    return response


def _task_id_of(request: web.Request, endpoint: str) -> str | None:
    """The task a request names (before its handler runs: the journal keeps it either way)."""
    if endpoint in ("query", "cancel"):
        return request.match_info.get("task_id")
    if endpoint == "list":
        return request.query.get("task_id") or None
    if endpoint == "download":
        name = request.match_info.get("key", "").rsplit("/", 1)[-1]
        return name.removesuffix(".mp4") if name.endswith(".mp4") else None
    return None


async def _context(request: web.Request, endpoint: str, task_id: str | None) -> RequestContext:
    """What fault rules can match on for this request."""
    emulator = emulator_of(request)
    model = prompt = None
    if endpoint == "create":
        try:
            body = await read_json_body(request)
        except DashScopeError:
            body = None  # the handler answers it
        if isinstance(body, dict):
            model = body.get("model") if isinstance(body.get("model"), str) else None
            inputs = body.get("input")
            if isinstance(inputs, dict) and isinstance(inputs.get("prompt"), str):
                prompt = inputs["prompt"]
    elif endpoint == "list":
        model = request.query.get("model_name") or None
    elif endpoint == "get_policy":
        model = request.query.get("model") or None
    # The task's model and prompt are only matched by fault rules: no rules, no lookup.
    if task_id is not None and emulator.store.fault_rules():
        task = emulator.store.get_task(task_id)
        if task is not None:
            model, prompt = model or task.spec.model, task.spec.prompt
    return RequestContext(endpoint=endpoint, region=request[REGION],
                          api_key=bearer_key(request.headers.get("Authorization")) or None,
                          model=model, prompt=prompt, task_id=task_id)
