"""The chaos schedule joined with what happened: for each create of the run, the hard paths it
drew (``traffic/chaos.py``), whether the client's requests ever reached each one, how the task
ended, and the findings about it, so a developer sees which hard paths their client mishandled."""

from __future__ import annotations

from typing import Any

from .facts import Observed

# Paths that act on the create itself or on the task's timeline: taken as soon as the task exists.
_ON_CREATE = ("long-pending", "long-running", "failed-at-end")


def schedule_rows(chaos: dict, observed: Observed, fault_rules: list[dict],
                  findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    creates = {e.request_id: e for e in observed.creates}
    rules = {r["id"]: r for r in fault_rules}
    rows = []
    for draw in chaos.get("schedule", []):
        create = creates.get(draw["request_id"])
        task_id = create.task_id if create is not None and create.status == 200 else None
        facts = observed.tasks.get(task_id) if task_id else None
        paths = []
        for path in draw["paths"]:
            shown = dict(path)
            if path["path"] == "create-throttled":
                shown["hit"] = create is not None and create.status == 429
            elif path["path"] in _ON_CREATE:
                shown["hit"] = task_id is not None
            else:
                rule = rules.get(path.get("rule", ""))
                shown["hit"] = bool(rule and rule.get("applied")
                                    and rule["match"].get("task_id") == task_id)
            paths.append(shown)
        mine = [f["rule"] for f in findings
                if (task_id and task_id in f["evidence"].get("task_ids", []))
                or draw["request_id"] in f["evidence"].get("request_ids", [])]
        rows.append({
            "attempt": draw["attempt"], "request_id": draw["request_id"], "task_id": task_id,
            "create_status": create.status if create is not None else None,
            "outcome": _outcome(create, facts),
            "paths": paths, "findings": sorted(set(mine), key=mine.index)})
    return rows


def _outcome(create, facts) -> str:
    if create is None:
        return "not journaled"
    if create.status != 200:
        answer = "no answer" if create.status is None else str(create.status)
        return f"{answer} {create.code}" if create.code else answer
    if facts is None:
        return "created"
    return facts.status if not facts.failure_code else f"{facts.status} {facts.failure_code}"
