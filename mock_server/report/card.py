"""The report card: every finding, per key (with its account) and overall, as the JSON that
``GET /_mock/report`` answers and the object the pytest plugin hands out.

``build_report`` is a pure function of the journal entries, the task timelines and the clock's
reading, so the admin API can run it off the event loop. ``ReportCard`` reads that JSON back
(``from_json``) for the plugin and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from .facts import Entry, Observed, TaskFacts
from .rules import ERROR, INFO, RULES, SEVERITIES, WARNING, check_all
from .thresholds import Thresholds

FILTERS = ("key_id", "account", "since", "region")


def build_report(journal: Iterable[dict], tasks: dict[str, TaskFacts], now: datetime, *,
                 final: bool = False, thresholds: Thresholds | None = None,
                 filters: dict[str, Any] | None = None, chaos: dict | None = None,
                 fault_rules: list[dict] | None = None) -> dict[str, Any]:
    """The card as JSON. ``final``: the run is over, so a task nobody is waiting on any more is
    abandoned however recently it was asked about. ``filters``: ``key_id``, ``account``,
    ``since`` (a datetime: only requests from then on are judged), ``region``."""
    thresholds = thresholds or Thresholds()
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    entries = [Entry.from_journal(i, raw) for i, raw in enumerate(journal)]
    if "since" in filters:
        entries = [e for e in entries if e.time >= filters["since"]]
    observed = Observed(entries, tasks, now, final)
    findings = [f for f in check_all(observed, thresholds) if _kept(f, filters)]
    clients = _clients(observed, findings, filters)
    card = {
        "generated_at": now.isoformat(),
        "final": final,
        "filters": {k: (v.isoformat() if isinstance(v, datetime) else v)
                    for k, v in filters.items()},
        "thresholds": thresholds.to_json(),
        "summary": {
            "requests": sum(c["requests"] for c in clients),
            "tasks": sum(c["tasks"] for c in clients),
            "clients": len(clients),
            **_counts(findings),
            "clean": not any(f.severity in (ERROR, WARNING) for f in findings)},
        "clients": clients,
        "findings": [f.to_json() for f in findings],
        "rules": [rule.describe() for rule in RULES.values()],
        "chaos": None,
    }
    if chaos is not None:
        from .chaos_view import schedule_rows  # only chaos runs need it
        card["chaos"] = {**{k: v for k, v in chaos.items() if k != "schedule"},
                         "schedule": schedule_rows(chaos, observed, fault_rules or [],
                                                   card["findings"])}
    return card


def _kept(finding, filters: dict[str, Any]) -> bool:
    return _matches(filters, finding.key_id, finding.account_id, [finding.region])


def _matches(filters: dict[str, Any], key_id, account_id, regions) -> bool:
    return ((filters.get("key_id") is None or key_id == filters["key_id"])
            and (filters.get("account") is None or account_id == filters["account"])
            and (filters.get("region") is None or filters["region"] in regions))


def _counts(findings) -> dict[str, int]:
    return {"errors": sum(f.severity == ERROR for f in findings),
            "warnings": sum(f.severity == WARNING for f in findings),
            "infos": sum(f.severity == INFO for f in findings)}


def _clients(observed: Observed, findings, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per key that sent requests (downloads count for the task's owner; uploads, which
    carry no key, for nobody)."""
    rows: dict[str | None, dict[str, Any]] = {}
    for entry in observed.entries:
        if entry.endpoint is None:
            continue
        key_id, account_id, region = observed.who(entry)
        if key_id is None and entry.endpoint in ("upload", "download"):
            continue  # OSS requests never carry a key: not a keyless client
        row = rows.setdefault(key_id, {"key_id": key_id, "account_id": account_id,
                                       "regions": [], "requests": 0, "tasks": 0})
        row["account_id"] = row["account_id"] or account_id
        row["requests"] += 1
        if region and region not in row["regions"]:
            row["regions"].append(region)
    for task_id in observed.created:
        key_id = observed.owner(task_id)[0]
        if key_id in rows:
            rows[key_id]["tasks"] += 1
    kept = []
    for row in rows.values():
        if not _matches(filters, row["key_id"], row["account_id"], row["regions"]):
            continue
        mine = [f for f in findings if f.key_id == row["key_id"]]
        kept.append({**row, **_counts(mine), "rules": sorted({f.rule for f in mine})})
    return kept


# --- reading a card back -------------------------------------------------------------------------
@dataclass
class ReportCard:
    """A report card as the plugin and the command line get it (``GET /_mock/report``)."""
    data: dict[str, Any]
    findings: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.findings = list(self.data.get("findings", []))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReportCard":
        return cls(data)

    def to_json(self) -> dict[str, Any]:
        return self.data

    def rules(self, severity: str | None = None) -> set[str]:
        """The names of the rules that found something (of one severity, or any)."""
        return {f["rule"] for f in self.findings if severity is None or f["severity"] == severity}

    def worse_than_info(self, ignore: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Errors and warnings, minus the rules in ``ignore``."""
        ignored = set(ignore)
        return [f for f in self.findings
                if f["severity"] in (ERROR, WARNING) and f["rule"] not in ignored]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["severity"] == ERROR]

    @property
    def clean(self) -> bool:
        return not self.worse_than_info()

    def text(self) -> str:
        from .render import render_text
        return render_text(self.data)

    def __str__(self) -> str:
        return self.text()


__all__ = ["build_report", "ReportCard", "FILTERS", "SEVERITIES"]
