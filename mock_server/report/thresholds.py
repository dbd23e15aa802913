"""The numbers the report's rules judge by, with their defaults and why. Each can be changed per
report: ``GET /_mock/report?polls_after_terminal=5``, ``kf2v-mock report --threshold NAME=VALUE``,
``kf2v.report(thresholds={...})``.

The defaults are set so the official SDK's own ``call()`` / ``wait()`` (1.x and the 2.0 client)
earn a clean card: it polls at 1, 1, 2, 2, 2, 4, 4, 4, 5, 5 ... s (1.x) or 1, 2, 4, 8, 8 ... s (2.0)
and stops at the first terminal answer (sdk-wire-contract §15, client-mistakes.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    # unknown-not-terminal: queries of a task id allowed after it answered UNKNOWN (one re-check).
    polls_after_unknown: int = 1
    # poll-after-terminal: queries allowed after SUCCEEDED / FAILED / CANCELED ("a couple": e.g.
    # one more to get a fresh link).
    polls_after_terminal: int = 2
    # abandoned-task, in a report taken while the run goes on (not final): a task whose client
    # asked within this many seconds is still being waited on.
    abandon_grace_seconds: float = 60.0
    # poll-too-fast: the median gap between a task's polls below this is faster than the official
    # SDKs (their shortest gap is 1 s).
    min_poll_gap_seconds: float = 0.9
    # poll-too-fast: more polls than factor x (what 1.x wait() makes over the same time) + slack.
    poll_count_factor: float = 1.5
    poll_count_slack: int = 2
    # poll-too-fast: a task's spacing is judged from this many polls on.
    min_polls_to_judge: int = 4
    # no-backoff: a retry earlier than Retry-After minus this is too early.
    retry_after_tolerance_seconds: float = 0.05
    # no-backoff: this many retries in a row of a failing request (429, 5xx, dropped) whose delays
    # never grow and all stay below the cap (the SDK's 2 s steps are not flagged).
    no_backoff_streak: int = 3
    backoff_cap_seconds: float = 2.0
    # duplicate-submit: the same create body accepted twice within this many seconds (300 s is the
    # SDK's own request timeout, after which a retry would come).
    duplicate_window_seconds: float = 300.0
    # submit-burst: more new submits than this per second per account and model (documented: 2).
    submit_rps: int = 2

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, values: dict[str, Any]) -> "Thresholds":
        """These thresholds with ``values`` (text or numbers) replacing some; ``ValueError`` for an
        unknown name or a value that is not a non-negative number of the right kind."""
        kinds = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name not in kinds:
                raise ValueError(f"unknown report threshold {name!r}; use one of "
                                 f"{', '.join(kinds)}")
            try:
                number = int(value) if kinds[name] == "int" else float(value)
            except (TypeError, ValueError):
                raise ValueError(f"report threshold {name} must be a number, not {value!r}") from None
            if number < 0 or number != number:
                raise ValueError(f"report threshold {name} must be >= 0")
            changes[name] = number
        return replace(self, **changes)


NAMES = tuple(f.name for f in fields(Thresholds))


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` (the command line's ``--threshold``) as a dict."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"a threshold is NAME=VALUE, got {pair!r}")
        values[name.strip()] = value.strip()
    return values
