"""Fault rules: what ``POST /_mock/faults`` stores, which requests a rule matches, and the seeded
draws that decide whether it fires.

A rule is a JSON-serialisable dict kept in the ``Store`` (so a persistent store keeps it too)::

    {"id": "f1", "match": {...}, "<action>": {...}, "probability": 1.0, "times": null,
     "applied": 0, "remaining": null, "draws": 0, "active": true, "source": "api"}

Whether a rule with ``probability`` < 1 fires on its n-th matching request is decided by
``random.Random(f"{seed}:{id}:{n}")``, so the same rules and requests give the same outcomes on
every run (and after a restart: ``draws`` is saved with the rule). ``times`` retires the rule after
that many applications; a retired rule stays listed with ``"active": false``. ``after: N`` lets the
first N matching requests pass untouched (then the rule is stored with a ``seen`` counter), so a
rule can aim at, say, the third poll of a task.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..tasks.errors import CATALOGUE, DashScopeError, example_message, lookup
from ..tasks.models import Failure
from ..tasks.regions import REGIONS
from ..tasks.store_interface import Store

ENDPOINTS = ("create", "query", "list", "cancel", "get_policy", "upload", "download")
ACTIONS = ("error", "task_failure", "delay", "disconnect", "truncate", "expire_url", "task_timing")
MATCH_KEYS = ("region", "api_key", "model", "endpoint", "prompt_regex", "task_id")
# Actions that end the request; one request gets at most one of them (the first rule that fires).
TERMINAL = ("error", "disconnect", "truncate")
# Actions that only make sense on one endpoint: they shape a created task / a served result link.
ONLY_ON = {"task_failure": "create", "expire_url": "query", "task_timing": "create"}
MAX_DELAY_MS = 600_000  # ten minutes: longer than any client timeout worth testing
# A task's queue wait or run time set by a rule: less than its 24 hours of life.
MAX_TASK_SECONDS = 86_000
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# ASSUMPTION: the service's 429 answers carry Retry-After (its value is not documented).
THROTTLE_RETRY_AFTER = "1"


class RuleError(ValueError):
    """A rule the emulator cannot use; the admin API answers it as a 400."""


@dataclass(frozen=True)
class RequestContext:
    """What a rule can match on, for one API request."""
    endpoint: str
    region: str
    api_key: str | None = None
    model: str | None = None
    prompt: str | None = None
    task_id: str | None = None


# --- actions ---------------------------------------------------------------------------------------
def normalize_action(kind: str, spec: Any) -> dict:
    """The stored form of one action, with everything resolved that can be (e.g. an error's
    status and message from the catalogue), so ``GET /_mock/faults`` shows what will happen."""
    if not isinstance(spec, dict):
        raise RuleError(f"{kind} must be a JSON object")
    if kind == "error":
        return _error_action(spec)
    if kind == "task_failure":
        return _failure_action(spec)
    if kind == "delay":
        return _delay_action(spec)
    if kind == "task_timing":
        return _timing_action(spec)
    if kind == "truncate":
        _only(spec, {"bytes"}, kind)
        size = spec.get("bytes")
        if size is not None and (not _is_int(size) or size < 0):
            raise RuleError("truncate.bytes must be an integer >= 0")
        return {"bytes": size}
    _only(spec, set(), kind)  # disconnect, expire_url
    return {}


def _error_action(spec: dict) -> dict:
    _only(spec, {"code", "name", "status", "message", "retry_after"}, "error")
    retry_after = spec.get("retry_after")
    if retry_after is not None:
        if not _is_int(retry_after) or not 0 <= retry_after <= 3600:
            raise RuleError("error.retry_after must be whole seconds in [0, 3600]")
        return {**_error_action({k: v for k, v in spec.items() if k != "retry_after"}),
                "retry_after": retry_after}
    name = _catalogue_name(spec, "error")
    status, message = spec.get("status"), spec.get("message")
    if status is not None and (not _is_int(status) or not 400 <= status <= 599):
        raise RuleError("error.status must be an HTTP error status (400-599)")
    if message is not None and not isinstance(message, str):
        raise RuleError("error.message must be a string")
    if name is None:
        code = spec.get("code")
        if status is None or message is None:
            raise RuleError(f"error.code {code!r} is not in the catalogue (docs/errors.md): "
                            "give status and message too, or use a catalogue code or name")
        return {"code": code, "status": status, "message": message, "name": None}
    entry = CATALOGUE[name]
    return {"code": entry.code, "status": status if status is not None else entry.status,
            "message": message if message is not None else example_message(name), "name": name}


def _failure_action(spec: dict) -> dict:
    _only(spec, {"code", "name", "message", "at"}, "task_failure")
    at = spec.get("at", "end")
    if at not in ("start", "end"):
        raise RuleError('task_failure.at must be "start" or "end"')
    message = spec.get("message")
    if message is not None and not isinstance(message, str):
        raise RuleError("task_failure.message must be a string")
    name = _catalogue_name(spec, "task_failure")
    if name is None:
        if message is None:
            raise RuleError(f"task_failure.code {spec.get('code')!r} is not in the catalogue: "
                            "give a message too, or use a catalogue code or name")
        return {"code": spec["code"], "message": message, "at": at, "name": None}
    return {"code": CATALOGUE[name].code,
            "message": message if message is not None else example_message(name),
            "at": at, "name": name}


def _timing_action(spec: dict) -> dict:
    _only(spec, {"queue_wait", "run_time"}, "task_timing")
    if not spec:
        raise RuleError("task_timing needs queue_wait and/or run_time (seconds)")
    for name, value in spec.items():
        if not _is_number(value) or not 0 <= value <= MAX_TASK_SECONDS:
            raise RuleError(f"task_timing.{name} must be seconds in [0, {MAX_TASK_SECONDS}]")
    return dict(spec)


def _catalogue_name(spec: dict, kind: str) -> str | None:
    """The catalogue entry named by ``name`` (a key) or ``code``; None for an unknown code."""
    if "name" in spec:
        name = spec["name"]
        if not isinstance(name, str) or name not in CATALOGUE:
            raise RuleError(f"{kind}.name {name!r} is not a catalogue name (docs/errors.md)")
        if "code" in spec and spec["code"] != CATALOGUE[name].code:
            raise RuleError(f"{kind}.code {spec['code']!r} does not match {kind}.name {name!r}")
        return name
    code = spec.get("code")
    if not isinstance(code, str) or not code:
        raise RuleError(f"{kind} needs a code (or a catalogue name)")
    return lookup(code)


def _delay_action(spec: dict) -> dict:
    if len(spec) != 1 or next(iter(spec)) not in ("ms", "uniform", "lognormal"):
        raise RuleError('delay needs exactly one of "ms", "uniform": [lo, hi] or '
                        '"lognormal": {"mu", "sigma"}')
    if "ms" in spec:
        ms = spec["ms"]
        if not _is_number(ms) or not 0 <= ms <= MAX_DELAY_MS:
            raise RuleError(f"delay.ms must be a number in [0, {MAX_DELAY_MS}]")
        return {"ms": ms}
    if "uniform" in spec:
        bounds = spec["uniform"]
        if (not isinstance(bounds, list) or len(bounds) != 2 or not all(map(_is_number, bounds))
                or not 0 <= bounds[0] <= bounds[1] <= MAX_DELAY_MS):
            raise RuleError(f"delay.uniform must be [lo_ms, hi_ms] with 0 <= lo <= hi <= "
                            f"{MAX_DELAY_MS}")
        return {"uniform": list(bounds)}
    params = spec["lognormal"]
    if (not isinstance(params, dict) or set(params) != {"mu", "sigma"}
            or not _is_number(params["mu"]) or not _is_number(params["sigma"])
            or params["sigma"] < 0 or params["mu"] > math.log(MAX_DELAY_MS)):
        raise RuleError('delay.lognormal must be {"mu": m, "sigma": s >= 0} (of ln ms)')
    return {"lognormal": {"mu": params["mu"], "sigma": params["sigma"]}}


def delay_ms(action: dict, rng: random.Random) -> float:
    if "ms" in action:
        return float(action["ms"])
    if "uniform" in action:
        return rng.uniform(*action["uniform"])
    params = action["lognormal"]
    return min(rng.lognormvariate(params["mu"], params["sigma"]), MAX_DELAY_MS)


def error_of(action: dict) -> DashScopeError:
    error = DashScopeError(action["status"], action["code"], action["message"])
    if "retry_after" in action:
        error.headers["Retry-After"] = str(action["retry_after"])
    elif error.status == 429:
        error.headers["Retry-After"] = THROTTLE_RETRY_AFTER
    return error


def failure_of(action: dict) -> Failure:
    return Failure(action["code"], action["message"], at=action["at"])


def action_kind(rule: dict) -> str:
    return next(kind for kind in ACTIONS if kind in rule)


def describe_action(kind: str, action: dict, delay: float | None = None) -> str:
    """What an action does, in words (reasons, the console)."""
    if kind == "error":
        return f"error {action['status']} {action['code']}"
    if kind == "task_failure":
        return f"the task FAILS at its {action['at']} with {action['code']}"
    if kind == "delay":
        return f"answer delayed {delay:.0f} ms" if delay is not None else "delay"
    if kind == "disconnect":
        return "connection closed without an answer"
    if kind == "truncate":
        size = action.get("bytes")
        return ("answer cut after half its body" if size is None
                else f"answer cut after {size} body bytes")
    if kind == "task_timing":
        return "the task " + " and ".join(
            f"{'waits PENDING' if name == 'queue_wait' else 'runs'} {seconds:g} s"
            for name, seconds in action.items())
    return "result link served already expired"


def describe_firing(rule: dict, draw: float | None, delay: float | None = None) -> str:
    """Why ``rule`` acted on a request: its id, action, the seeded draw and its count."""
    kind = action_kind(rule)
    parts = [describe_action(kind, rule[kind], delay)]
    if draw is not None:
        parts.append(f"draw {draw:.4f} < probability {rule['probability']}")
    if rule["times"] is not None:
        parts.append(f"application {rule['applied']} of {rule['times']}")
    if rule.get("after"):
        parts.append(f"matching request {rule['seen']}, after {rule['after']} let through")
    source = "" if rule.get("source", "api") == "api" else f" from {rule['source']}"
    return f"fault rule {rule['id']}{source}: " + ", ".join(parts)


# --- rules -----------------------------------------------------------------------------------------
def parse_rule(body: Any) -> dict:
    """Validate a ``POST /_mock/faults`` body into a rule without id or counters."""
    if not isinstance(body, dict):
        raise RuleError("a fault rule is a JSON object")
    kinds = [kind for kind in ACTIONS if kind in body]
    if len(kinds) != 1:
        raise RuleError(f"a fault rule has exactly one action, one of: {', '.join(ACTIONS)}")
    kind = kinds[0]
    unknown = set(body) - {"id", "match", "probability", "times", "after", kind}
    if unknown:
        raise RuleError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
    match = _parse_match(body.get("match", {}), kind)
    probability = body.get("probability", 1)
    if not _is_number(probability) or not 0 <= probability <= 1:
        raise RuleError("probability must be a number in [0, 1]")
    times = body.get("times")
    if times is not None and (not _is_int(times) or times < 1):
        raise RuleError("times must be a positive integer or null")
    rule = {"match": match, kind: normalize_action(kind, body[kind]),
            "probability": probability, "times": times}
    if "after" in body:
        after = body["after"]
        if not _is_int(after) or after < 0:
            raise RuleError("after must be an integer >= 0 (matching requests to let pass first)")
        rule["after"] = after
    if "id" in body:
        if not isinstance(body["id"], str) or not RULE_ID.match(body["id"]):
            raise RuleError("id must be 1-64 letters, digits, '.', '_', ':' or '-'")
        rule["id"] = body["id"]
    return rule


def _parse_match(match: Any, kind: str) -> dict:
    if not isinstance(match, dict):
        raise RuleError("match must be a JSON object")
    unknown = set(match) - set(MATCH_KEYS)
    if unknown:
        raise RuleError(f"unknown match field(s): {', '.join(sorted(unknown))}; "
                        f"use {', '.join(MATCH_KEYS)}")
    for key, value in match.items():
        if key != "endpoint" and not isinstance(value, str):
            raise RuleError(f"match.{key} must be a string")
    if "region" in match and match["region"] not in REGIONS:
        raise RuleError(f"match.region must be one of {', '.join(REGIONS)}")
    if "prompt_regex" in match:
        try:
            re.compile(match["prompt_regex"])
        except re.error as exc:
            raise RuleError(f"match.prompt_regex is not a valid regular expression: {exc}") from None
    if "endpoint" in match:
        endpoints = match["endpoint"]
        listed = endpoints if isinstance(endpoints, list) else [endpoints]
        if not listed or not all(isinstance(e, str) and e in ENDPOINTS for e in listed):
            raise RuleError(f"match.endpoint must be one of (or a list of) {', '.join(ENDPOINTS)}")
        only = ONLY_ON.get(kind)
        if only is not None and set(listed) != {only}:
            raise RuleError(f"{kind} applies to the {only} endpoint only")
    return dict(match)


def matches(rule: dict, ctx: RequestContext) -> bool:
    match = rule["match"]
    only = ONLY_ON.get(action_kind(rule))
    endpoints = match.get("endpoint", only)
    if endpoints is not None:
        if ctx.endpoint not in (endpoints if isinstance(endpoints, list) else [endpoints]):
            return False
    for key in ("region", "api_key", "model", "task_id"):
        if key in match and match[key] != getattr(ctx, key):
            return False
    if "prompt_regex" in match:
        if ctx.prompt is None or not re.search(match["prompt_regex"], ctx.prompt):
            return False
    return True


@dataclass
class Selection:
    """What the rules decided for one request before its handler runs."""
    delay_ms: float = 0.0
    terminal: tuple[str, dict] | None = None  # (kind, action) of the error/disconnect/truncate
    rule_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why each rule fired (describe_firing)


class FaultEngine:
    def __init__(self, store: Store, seed: int = 0):
        self.store = store
        self.seed = seed
        self._next_id = 1

    # --- admin -----------------------------------------------------------------------------------
    def add(self, body: Any, *, source: str = "api", match: dict | None = None) -> dict:
        rule = parse_rule(body)
        if match:
            rule["match"].update(match)
        rule_id = rule.pop("id", None) or self._new_id()
        stored = {"id": rule_id, **rule, "applied": 0, "remaining": rule["times"], "draws": 0,
                  "active": True, "source": source}
        if "after" in rule:
            stored["seen"] = 0
        self.store.put_fault_rule(stored)
        return stored

    def rules(self) -> list[dict]:
        return self.store.fault_rules()

    def get(self, rule_id: str) -> dict | None:
        return next((r for r in self.store.fault_rules() if r["id"] == rule_id), None)

    def delete(self, rule_id: str) -> bool:
        if self.get(rule_id) is None:
            return False
        self.store.delete_fault_rule(rule_id)
        return True

    def clear(self) -> None:
        for rule in self.store.fault_rules():
            self.store.delete_fault_rule(rule["id"])
        self._next_id = 1

    def reset_ids(self) -> None:
        self._next_id = 1

    def _new_id(self) -> str:
        # Sequential ids keep runs repeatable (the draws are seeded by id); a persistent store
        # may already hold some, so continue after the highest.
        taken = {r["id"] for r in self.store.fault_rules()}
        numbers = [int(i[1:]) for i in taken if i.startswith("f") and i[1:].isdigit()]
        self._next_id = max([self._next_id, *(n + 1 for n in numbers)])
        rule_id = f"f{self._next_id}"
        self._next_id += 1
        return rule_id

    # --- applying --------------------------------------------------------------------------------
    def select(self, ctx: RequestContext, *, terminal_taken: bool = False) -> Selection:
        """Delays (summed) and the first terminal action among the rules that fire for ``ctx``
        (none when ``terminal_taken``: a scenario already decided how the request ends)."""
        selection = Selection()
        for rule in self.store.fault_rules():
            kind = action_kind(rule)
            if kind in ONLY_ON:
                continue
            if kind in TERMINAL and (terminal_taken or selection.terminal is not None):
                continue
            fired, draw = self._draw(rule, ctx)
            if not fired:
                continue
            delay = None
            if kind == "delay":
                delay = delay_ms(rule["delay"], self._rng(rule, "delay", rule["applied"]))
                selection.delay_ms += delay
            else:
                selection.terminal = (kind, rule[kind])
            self._applied(rule)
            selection.rule_ids.append(rule["id"])
            selection.notes.append(describe_firing(rule, draw, delay))
        return selection

    def take(self, kind: str, ctx: RequestContext) -> tuple[dict, str] | None:
        """The first rule of ``kind`` (task_failure, expire_url) that fires for ``ctx`` and why;
        counted as applied, so call it only where the effect really happens."""
        for rule in self.store.fault_rules():
            if action_kind(rule) != kind:
                continue
            fired, draw = self._draw(rule, ctx)
            if fired:
                self._applied(rule)
                return rule, describe_firing(rule, draw)
        return None

    def _draw(self, rule: dict, ctx: RequestContext) -> tuple[bool, float | None]:
        """Whether ``rule`` fires for ``ctx``, and the seeded draw that decided it (None when its
        probability is 1)."""
        if not rule["active"] or not matches(rule, ctx):
            return False, None
        if rule.get("after"):  # the first ``after`` matching requests pass untouched
            rule["seen"] += 1
            self.store.put_fault_rule(rule)
            if rule["seen"] <= rule["after"]:
                return False, None
        if rule["probability"] >= 1:
            return True, None
        draw = self._rng(rule, "draw", rule["draws"]).random()
        rule["draws"] += 1
        self.store.put_fault_rule(rule)
        return draw < rule["probability"], draw

    def _rng(self, rule: dict, purpose: str, n: int) -> random.Random:
        return random.Random(f"{self.seed}:{rule['id']}:{purpose}:{n}")

    def _applied(self, rule: dict) -> None:
        rule["applied"] += 1
        if rule["times"] is not None:
            rule["remaining"] = max(rule["times"] - rule["applied"], 0)
            rule["active"] = rule["remaining"] > 0
        self.store.put_fault_rule(rule)


class FaultPlan:
    """Handed to the API handler: the actions that depend on what the handler finds (a task that
    is really created, a result link that is really served), decided only when it happens."""

    def __init__(self, engine: FaultEngine, ctx: RequestContext, *,
                 scenario_failure: tuple[str, dict] | None = None,
                 applied: list[str] | None = None, notes: list[str] | None = None,
                 scenario_timing: tuple[str, dict] | None = None):
        self.engine = engine
        self.ctx = ctx
        self.scenario_failure = scenario_failure  # (scenario name, task_failure action)
        self.scenario_timing = scenario_timing  # (scenario name, task_timing action)
        self.applied = applied if applied is not None else []
        self.notes = notes if notes is not None else []  # why, for the request's reason

    def task_failure(self, model: str, prompt: str | None) -> Failure | None:
        """How the task about to be created fails, if a scenario or a rule says so."""
        if self.scenario_failure is not None:
            name, action = self.scenario_failure
            self.notes.append(f"scenario {name}: {describe_action('task_failure', action)}")
            return failure_of(action)
        taken = self.engine.take("task_failure", replace(self.ctx, model=model, prompt=prompt))
        if taken is None:
            return None
        rule, why = taken
        self.applied.append(rule["id"])
        self.notes.append(why)
        return failure_of(rule["task_failure"])

    def task_timing(self, model: str, prompt: str | None) -> dict | None:
        """``{"queue_wait"?, "run_time"?}`` (seconds) for the task about to be created, if a
        scenario or a rule sets them (a long PENDING or RUNNING)."""
        if self.scenario_timing is not None:
            name, action = self.scenario_timing
            self.notes.append(f"scenario {name}: {describe_action('task_timing', action)}")
            return action
        taken = self.engine.take("task_timing", replace(self.ctx, model=model, prompt=prompt))
        if taken is None:
            return None
        rule, why = taken
        self.applied.append(rule["id"])
        self.notes.append(why)
        return rule["task_timing"]

    def expire_url(self) -> bool:
        """Whether the result link about to be served is to be already expired."""
        taken = self.engine.take("expire_url", self.ctx)
        if taken is not None:
            self.applied.append(taken[0]["id"])
            self.notes.append(taken[1])
        return taken is not None


def _only(spec: dict, allowed: set[str], kind: str) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise RuleError(f"unknown {kind} field(s): {', '.join(sorted(unknown))}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
