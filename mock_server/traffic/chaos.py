"""A seeded chaos run: every create, and every task it makes, takes a legal but hard path drawn
from a seeded schedule, so a client meets in one run the bad days of the real service.

The paths (stable names, all things the real service does):

- ``create-throttled``: the create answers 429 ``Throttling.RateQuota`` with a ``Retry-After``;
  nothing is created (the client should wait that long and send it again);
- ``long-pending`` / ``long-running``: the task waits in the queue / runs much longer than usual;
- ``failed-at-end``: the task runs, then ends FAILED with a catalogue code;
- ``poll-503``, ``poll-dropped``, ``poll-throttled``: the task's k-th query answers 503
  ``ModelUnavailable``, has its connection dropped without an answer, or answers 429 with a
  ``Retry-After``;
- ``link-expired``: the first result link served for the task is already expired (the link expiring
  between SUCCEEDED and the download);
- ``download-truncated``: the first download of the result is cut off halfway.

It is built on the scenario and fault machinery: each create draws one scenario (``chaos:<n>``)
whose request actions shape the create itself (the 429, the task's timing and failure) and whose
task rules are installed as fault rules on the new task (``after`` aims them at its k-th query).
The schedule is keyed by order: the n-th create of the run, the k-th query of a task, so the same
seed and the same client replay the same run, whatever the wall clock does. Every decision comes
from its own generator, ``random.Random("chaos:<seed>:<label>:<n>:<path>")``, so one path's
probability never shifts another's draws.

Profiles live in ``PROFILES`` (README, "A seeded chaos run"): ``default`` keeps every path the
real service can take; ``quick`` is the same with short waits, for CI; ``network`` only the
transport paths; ``lifecycle`` only the task's own paths. Durations are for the ``fast`` timing
profile; with ``realistic`` timing they are ten times longer (tasks there take minutes anyway).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from ..tasks.errors import CATALOGUE
from .scenarios import Scenario

PATHS = ("create-throttled", "long-pending", "long-running", "failed-at-end", "poll-503",
         "poll-dropped", "poll-throttled", "link-expired", "download-truncated")
TIMING_SCALE = {"fast": 1.0, "realistic": 10.0}


@dataclass(frozen=True)
class Profile:
    """How often each hard path is taken (0..1) and how hard it is."""
    name: str
    description: str
    create_throttled: float = 0.0
    long_pending: float = 0.0
    long_running: float = 0.0
    failed_at_end: float = 0.0
    poll_503: float = 0.0
    poll_dropped: float = 0.0
    poll_throttled: float = 0.0
    link_expired: float = 0.0
    download_truncated: float = 0.0
    retry_after_seconds: tuple[int, int] = (1, 3)
    pending_seconds: tuple[float, float] = (8.0, 30.0)
    running_seconds: tuple[float, float] = (10.0, 45.0)
    # Which query of the task a poll path hits (1 = the first).
    poll_numbers: tuple[int, int] = (1, 4)
    # Catalogue entries a task may fail with at its end.
    failure_names: tuple[str, ...] = ("internal_algo", "output_inspection_failed",
                                      "internal_timeout")

    def describe(self) -> dict:
        return asdict(self)


_EVERY_PATH = dict(create_throttled=0.2, long_pending=0.3, long_running=0.3, failed_at_end=0.15,
                   poll_503=0.25, poll_dropped=0.15, poll_throttled=0.1, link_expired=0.1,
                   download_truncated=0.15)
PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("default", "every hard path the real service can take, mixed", **_EVERY_PATH),
    Profile("quick", "every path of the default profile with short waits (2-6 s PENDING, "
            "3-8 s RUNNING), for CI", **_EVERY_PATH, pending_seconds=(2.0, 6.0),
            running_seconds=(3.0, 8.0)),
    Profile("network", "only the transport: throttled creates and polls, 503s, dropped "
            "connections, truncated downloads; tasks themselves behave",
            create_throttled=0.25, poll_503=0.3, poll_dropped=0.2, poll_throttled=0.15,
            download_truncated=0.25),
    Profile("lifecycle", "only the task's own paths: long PENDING and RUNNING, FAILED at the "
            "end, an expired link; every request is answered",
            long_pending=0.4, long_running=0.4, failed_at_end=0.25, link_expired=0.2),
)}


@dataclass
class Draw:
    """What the schedule decided for the n-th create of the run."""
    attempt: int
    request_id: str
    paths: list[dict] = field(default_factory=list)  # {"path": name, ...details, "rule": id?}

    def describe(self) -> dict:
        return {"attempt": self.attempt, "request_id": self.request_id, "paths": self.paths}


class ChaosRun:
    def __init__(self, seed: int, profile: str = "default", *, label: str = "",
                 timing: str = "fast"):
        if profile not in PROFILES:
            raise ValueError(f"unknown chaos profile {profile!r}; use one of "
                             f"{', '.join(PROFILES)}")
        self.seed = seed
        self.profile = PROFILES[profile]
        self.label = label
        self.scale = TIMING_SCALE.get(timing, 1.0)
        self.draws: list[Draw] = []

    def restart(self, label: str | None = None) -> None:
        """Start the schedule again from its first create (a reset; a new test)."""
        if label is not None:
            self.label = label
        self.draws = []

    # --- drawing ---------------------------------------------------------------------------------
    def _rng(self, attempt: int, path: str) -> random.Random:
        return random.Random(f"chaos:{self.seed}:{self.label}:{attempt}:{path}")

    def _takes(self, attempt: int, path: str) -> tuple[bool, random.Random]:
        rng = self._rng(attempt, path)
        return rng.random() < getattr(self.profile, path.replace("-", "_")), rng

    def draw_create(self, request_id: str) -> tuple[str, Scenario]:
        """The next create's hard paths, as a scenario named ``chaos:<n>``."""
        attempt = len(self.draws) + 1
        draw = Draw(attempt, request_id)
        self.draws.append(draw)
        name = f"chaos:{attempt}"
        throttled, rng = self._takes(attempt, "create-throttled")
        if throttled:
            retry_after = rng.randint(*self.profile.retry_after_seconds)
            draw.paths.append({"path": "create-throttled", "retry_after": retry_after})
            return name, Scenario(name, "chaos", request=(
                ("error", {"name": "throttling_rate", "retry_after": retry_after}),))
        request: list[tuple[str, dict]] = []
        timing: dict[str, float] = {}
        for path, key, span in (("long-pending", "queue_wait", self.profile.pending_seconds),
                                ("long-running", "run_time", self.profile.running_seconds)):
            taken, rng = self._takes(attempt, path)
            if taken:
                timing[key] = round(rng.uniform(*span) * self.scale, 1)
                draw.paths.append({"path": path, "seconds": timing[key]})
        if timing:
            request.append(("task_timing", timing))
        failed, rng = self._takes(attempt, "failed-at-end")
        if failed:
            failure = rng.choice(self.profile.failure_names)
            request.append(("task_failure", {"name": failure, "at": "end"}))
            draw.paths.append({"path": "failed-at-end", "code": CATALOGUE[failure].code,
                               "name": failure})
        rules = self._poll_rules(attempt, draw)
        if not failed:
            rules += self._result_rules(attempt, draw)
        return name, Scenario(name, "chaos", request=tuple(request), task=tuple(rules))

    def _poll_rules(self, attempt: int, draw: Draw) -> list[dict]:
        rules, taken_polls = [], set()
        for path in ("poll-503", "poll-dropped", "poll-throttled"):
            taken, rng = self._takes(attempt, path)
            if not taken:
                continue
            poll = rng.randint(*self.profile.poll_numbers)
            while poll in taken_polls:  # one hard answer per query
                poll += 1
            taken_polls.add(poll)
            action: dict
            if path == "poll-503":
                action = {"error": {"name": "model_unavailable"}}
                detail: dict = {}
            elif path == "poll-dropped":
                action, detail = {"disconnect": {}}, {}
            else:
                retry_after = rng.randint(*self.profile.retry_after_seconds)
                action = {"error": {"name": "throttling_rate", "retry_after": retry_after}}
                detail = {"retry_after": retry_after}
            rule_id = f"chaos-{attempt}-{path}"
            rules.append({"id": rule_id, "match": {"endpoint": "query"}, **action,
                          "after": poll - 1, "times": 1})
            draw.paths.append({"path": path, "poll": poll, **detail, "rule": rule_id})
        return rules

    def _result_rules(self, attempt: int, draw: Draw) -> list[dict]:
        rules = []
        if self._takes(attempt, "link-expired")[0]:
            rule_id = f"chaos-{attempt}-link-expired"
            rules.append({"id": rule_id, "expire_url": {}, "times": 1})
            draw.paths.append({"path": "link-expired", "rule": rule_id})
        if self._takes(attempt, "download-truncated")[0]:
            rule_id = f"chaos-{attempt}-download-truncated"
            rules.append({"id": rule_id, "match": {"endpoint": "download"}, "truncate": {},
                          "times": 1})
            draw.paths.append({"path": "download-truncated", "rule": rule_id})
        return rules

    # --- showing ---------------------------------------------------------------------------------
    def describe(self) -> dict:
        return {"seed": self.seed, "profile": self.profile.name, "label": self.label,
                "timing_scale": self.scale, "settings": self.profile.describe(),
                "schedule": [d.describe() for d in self.draws]}


def profiles() -> list[dict]:
    return [p.describe() for p in PROFILES.values()]
