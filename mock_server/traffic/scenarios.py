"""In-band scenarios: a named outcome chosen by the request itself, for black-box tests that cannot
reach the admin API.

- Header ``X-Mock-Scenario: <name>[, <name> ...]`` on any API request.
- Prompt directive ``[mock:<name>]`` anywhere in ``input.prompt`` of a create request (several may
  appear). The prompt is otherwise kept as sent.

A scenario is made of the same actions as a fault rule. ``request`` actions act on the request that
carries the scenario (an error, a delay, a dropped or truncated answer; ``task_failure`` on a
create); ``task`` rules are installed, once a create succeeds, as fault rules matching the new
task's id (e.g. its first two polls answer 503, or its result link is served expired).
Names: the fixed ones in ``NAMED``, plus ``error:<name-or-code>`` for every catalogue entry,
``fail-at-start:<name-or-code>``, ``fail-at-end:<name-or-code>`` and ``slow:<ms>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..tasks.errors import CATALOGUE, DashScopeError, lookup
from .faults import RuleError, describe_action, normalize_action

HEADER = "X-Mock-Scenario"
DIRECTIVE = re.compile(r"\[mock:([^\]\s]+)\]")
SLOW_MS = 3000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # (kind, raw action) pairs applied to the carrying request.
    request: tuple[tuple[str, dict], ...] = ()
    # Fault-rule bodies installed for the task a create makes (match.task_id is added).
    task: tuple[dict, ...] = ()

    def describe(self) -> dict:
        body: dict = {"name": self.name, "description": self.description,
                      "applies_to": "create" if self.task or self._creates_only() else "any"}
        if self.request:
            body["request"] = [{kind: normalize_action(kind, spec)} for kind, spec in self.request]
        if self.task:
            body["task_rules"] = self.task
        return body

    def _creates_only(self) -> bool:
        return any(kind in ("task_failure", "task_timing") for kind, _ in self.request)


def _error(name: str, description: str, error: str) -> Scenario:
    return Scenario(name, description, request=(("error", {"name": error}),))


NAMED: dict[str, Scenario] = {s.name: s for s in (
    _error("data-inspection-failed", "400 DataInspectionFailed: the input fails content "
           "moderation; nothing is created", "data_inspection_failed"),
    _error("ip-infringement", "400 IPInfringementSuspect; nothing is created", "ip_infringement"),
    _error("throttled", "429 Throttling.RateQuota with Retry-After; nothing is created",
           "throttling_rate"),
    _error("internal-error", "500 InternalError", "internal_error"),
    _error("model-unavailable", "503 ModelUnavailable (1.x wait() retries it)",
           "model_unavailable"),
    _error("arrearage", "400 Arrearage: the account is in arrears", "arrearage"),
    _error("invalid-api-key", "401 InvalidApiKey", "invalid_api_key"),
    Scenario("slow", f"the answer is delayed by {SLOW_MS} ms", request=(("delay", {"ms": SLOW_MS}),)),
    Scenario("disconnect", "the connection is closed without an answer",
             request=(("disconnect", {}),)),
    Scenario("truncate", "the status line and headers are sent, then half the body, then the "
             "connection is closed", request=(("truncate", {}),)),
    Scenario("fail-at-start", "create: the task is accepted and FAILS as soon as it starts with "
             "DataInspectionFailed (input moderation)",
             request=(("task_failure", {"name": "input_inspection_failed", "at": "start"}),)),
    Scenario("fail-at-end", "create: the task is accepted, runs, and FAILS at its end with "
             "DataInspectionFailed (output moderation)",
             request=(("task_failure", {"name": "output_inspection_failed", "at": "end"}),)),
    Scenario("flaky-polling", "create: the task's first two queries answer 503 ModelUnavailable",
             task=({"match": {"endpoint": "query"}, "error": {"name": "model_unavailable"},
                    "times": 2},)),
    Scenario("expire-url", "create: the task's result link is already expired when served "
             "(the download answers OSS 403 AccessDenied \"Request has expired.\")",
             task=({"expire_url": {}},)),
)}

PATTERNS = (
    {"name": "error:<name-or-code>", "description": "the catalogue error (docs/errors.md) on this "
     "request; a bare code means its default entry", "applies_to": "any"},
    {"name": "fail-at-start:<name-or-code>", "description": "create: the task FAILS when it starts "
     "with that catalogue error's code and message", "applies_to": "create"},
    {"name": "fail-at-end:<name-or-code>", "description": "create: the task FAILS at its end with "
     "that catalogue error's code and message", "applies_to": "create"},
    {"name": "slow:<ms>", "description": "the answer is delayed by <ms> milliseconds",
     "applies_to": "any"},
)


def resolve(name: str) -> Scenario:
    """The scenario called ``name``; ``DashScopeError`` (400) if there is none."""
    if name in NAMED:
        return NAMED[name]
    kind, _, arg = name.partition(":")
    try:
        if kind == "error" and lookup(arg):
            return _error(name, "", lookup(arg))  # type: ignore[arg-type]
        if kind in ("fail-at-start", "fail-at-end") and lookup(arg):
            at = kind.removeprefix("fail-at-")
            return Scenario(name, "", request=(("task_failure", {"name": lookup(arg), "at": at}),))
        if kind == "slow" and arg.isdigit():
            action = ("delay", {"ms": int(arg)})
            normalize_action(*action)
            return Scenario(name, "", request=(action,))
    except RuleError:
        pass
    raise DashScopeError.mock(f"unknown mock scenario {name!r}: GET /_mock/scenarios lists them")


def listing() -> list[dict]:
    """``GET /_mock/scenarios``: the named ones, then ``error:<name>`` for every catalogue entry,
    then the parameterised forms."""
    named = [s.describe() for s in NAMED.values()]
    errors = [_error(f"error:{n}", f"{spec.status} {spec.code}: {spec.message}", n).describe()
              for n, spec in CATALOGUE.items()]
    return [*named, *errors, *(dict(p, pattern=True) for p in PATTERNS)]


@dataclass
class Selected:
    """The scenarios one request carries, combined."""
    names: list[str] = field(default_factory=list)
    delay_ms: float = 0.0
    terminal: tuple[str, dict] | None = None
    task_failure: tuple[str, dict] | None = None  # (scenario name, task_failure action)
    task_timing: tuple[str, dict] | None = None  # (scenario name, task_timing action)
    task_rules: list[tuple[str, dict]] = field(default_factory=list)  # (scenario name, rule)
    notes: list[str] = field(default_factory=list)  # which scenario came from where, did what

    def add(self, name: str, scenario: Scenario, endpoint: str, origin: str) -> None:
        """Combine one more scenario: delays add up, the first terminal action and the first task
        failure/timing win, task rules accumulate (creates only)."""
        self.names.append(name)
        did = []
        for kind, spec in scenario.request:
            action = normalize_action(kind, spec)
            if kind == "delay":
                self.delay_ms += action["ms"]
                did.append(describe_action(kind, action, action["ms"]))
            elif kind == "task_failure":
                if endpoint == "create" and self.task_failure is None:
                    self.task_failure = (name, action)
            elif kind == "task_timing":
                if endpoint == "create" and self.task_timing is None:
                    self.task_timing = (name, action)
            elif self.terminal is None:
                self.terminal = (kind, action)
                did.append(describe_action(kind, action))
        self.notes.append(f"scenario {name} from {origin}" + (f": {', '.join(did)}"
                                                             if did else ""))
        if endpoint == "create":
            self.task_rules += [(name, rule) for rule in scenario.task]


def select(header: str | None, prompt: str | None, endpoint: str) -> Selected:
    names = [(n.strip(), f"the {HEADER} header") for n in (header or "").split(",") if n.strip()]
    if endpoint == "create" and prompt:
        names += [(n, f"the prompt directive [mock:{n}]") for n in DIRECTIVE.findall(prompt)]
    selected = Selected()
    for name, origin in names:
        selected.add(name, resolve(name), endpoint, origin)
    return selected
