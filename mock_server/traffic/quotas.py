"""Request-rate quotas like the real service's (api-facts §7, §6, §9), on the virtual clock.

Per account and region, over a sliding one-second window:

- task submits: ``submit_rps`` per model (documented: 2 for every kf2v model);
- task query, list and cancel together: ``query_qps`` (documented: 20 per main account);
- upload credentials (getPolicy): ``policy_qps`` per model (documented: 100).

A request over its limit is refused with 429 ``Throttling.RateQuota`` and a ``Retry-After`` (whole
seconds until the window has room); a refused request is not counted and creates nothing. The cap
on tasks RUNNING at once is not a rate: extra tasks wait PENDING (``tasks/scheduler.py``).
Time comes from the ``VirtualClock``: a frozen clock is one instant, so a test sees throttling
deterministically and lifts it with ``advance``.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from ..tasks.clock import VirtualClock
from ..tasks.errors import DashScopeError
from ..tasks.models import Account
from ..tasks.regions import REGIONS

WINDOW = timedelta(seconds=1)
QUERY_QPS = 20  # api-facts §6: 20 QPS per main account for query/list/cancel
POLICY_QPS = 100  # api-facts §9: upload-credential API, 100 QPS per main account and model
# ASSUMPTION: every limit answers Throttling.RateQuota (the upload page documents it for getPolicy;
# the code for the submit and query limits is not stated).
THROTTLE = "throttling_rate"


class Quotas:
    def __init__(self, clock: VirtualClock, *, submit_rps: int | None = None,
                 query_qps: int = QUERY_QPS, policy_qps: int = POLICY_QPS):
        self.clock = clock
        self.submit_rps = submit_rps  # None: each model's documented rate (ModelSpec.submit_rps)
        self.query_qps = query_qps
        self.policy_qps = policy_qps
        self._windows: dict[tuple, deque[datetime]] = {}

    def limit_for(self, account: Account, endpoint: str, model: str | None) -> tuple[tuple, int] | None:
        """(window key, limit) for a request, or None when no quota applies to it."""
        base = (account.region, account.account_id)
        if endpoint in ("query", "list", "cancel"):
            return (*base, "tasks"), self.query_qps
        models = REGIONS[account.region].models
        if endpoint == "create" and model in models:
            rps = self.submit_rps if self.submit_rps is not None else models[model].submit_rps
            return (*base, "submit", model), rps
        if endpoint == "get_policy" and model:
            # Made-up model names share one window: a client inventing names grows nothing here.
            name = model if model in models else "(unknown model)"
            return (*base, "policy", name), self.policy_qps
        return None

    def admit(self, account: Account, endpoint: str, model: str | None) -> dict | None:
        """Count the request, or raise 429 when its window is full. Returns the window's state
        after counting (for the journal): ``{"window", "used", "limit", "per_seconds"}``, or None
        when no quota applies."""
        found = self.limit_for(account, endpoint, model)
        if found is None:
            return None
        key, limit = found
        now = self.clock.now()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - WINDOW:
            window.popleft()
        name = _window_name(key)
        if len(window) >= limit:
            wait = (window[0] + WINDOW - now).total_seconds()
            error = DashScopeError.of(THROTTLE, reason=(
                f"quota {name} of account {account.account_id} in {account.region}: {len(window)} "
                f"of {limit} requests in the last second (virtual clock); room again in "
                f"{max(wait, 0):.3f} s"))
            error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            raise error
        window.append(now)
        return {"window": name, "used": len(window), "limit": limit, "per_seconds": 1}

    def clear(self) -> None:
        self._windows.clear()


def _window_name(key: tuple) -> str:
    """``submit:<model>``, ``tasks`` or ``policy:<model>`` (the region and account are the key's
    first two parts)."""
    return ":".join(key[2:])
