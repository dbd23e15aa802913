"""The report card (and a chaos run's schedule) as plain text: what ``kf2v-mock report``,
``kf2v-mock run --report`` and the pytest plugin print."""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

WIDTH = 100


def render_text(card: dict[str, Any]) -> str:
    summary = card["summary"]
    when = datetime.fromisoformat(card["generated_at"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    stage = "end of run" if card.get("final") else "so far"
    lines = [f"kf2v-mock report card ({stage}; virtual time {when})"]
    if card.get("filters"):
        lines.append("filters: " + ", ".join(f"{k}={v}" for k, v in card["filters"].items()))
    lines.append(f"{_plural(summary['clients'], 'key')}, {_plural(summary['requests'], 'request')}, "
                 f"{_plural(summary['tasks'], 'task')}: {_plural(summary['errors'], 'error')}, "
                 f"{_plural(summary['warnings'], 'warning')}, {summary['infos']} info")
    if card["clients"]:
        lines += ["", *_table(["KEY", "ACCOUNT", "REGION", "REQUESTS", "TASKS", "ERRORS",
                               "WARNINGS", "INFOS"],
                              [[c["key_id"] or "(no key)", c["account_id"] or "-",
                                ",".join(c["regions"]) or "-", c["requests"], c["tasks"],
                                c["errors"], c["warnings"], c["infos"]] for c in card["clients"]])]
    findings = card["findings"]
    if not findings:
        lines += ["", "No findings: the client behaved as the real service expects on every rule."]
    else:
        rows = [[f["severity"], f["rule"], f["key_id"] or "-",
                 _short((f["evidence"].get("task_ids") or ["-"])[0]),
                 datetime.fromisoformat(f["time"]).strftime("%H:%M:%S"), f["summary"]]
                for f in findings]
        lines += ["", *_table(["SEVERITY", "RULE", "KEY", "TASK", "AT", "WHAT"], rows)]
        lines += ["", "Why it matters against the real service, and the fix:"]
        seen = []
        for finding in findings:
            if finding["rule"] in seen:
                continue
            seen.append(finding["rule"])
            lines.append(f"  {finding['rule']} ({finding['severity']}): {finding['title']}")
            lines += _wrapped("why: ", finding["why"])
            lines += _wrapped("fix: ", finding["fix"])
    if card.get("chaos"):
        lines += ["", *render_chaos(card["chaos"])]
    return "\n".join(lines)


def render_chaos(chaos: dict[str, Any]) -> list[str]:
    lines = [f"Chaos run: seed {chaos['seed']}, profile {chaos['profile']}"
             + (f", test {chaos['label']}" if chaos.get("label") else "")
             + " (the same seed and the same client replay the same run)"]
    if not chaos["schedule"]:
        lines.append("  no creates: nothing was drawn")
        return lines
    rows = [[row["attempt"], _short(row["task_id"]) if row["task_id"] else "-", row["outcome"],
             "; ".join(_path(p) for p in row["paths"]) or "(the easy path)",
             ", ".join(row["findings"]) or "-"] for row in chaos["schedule"]]
    return lines + _table(["#", "TASK", "OUTCOME", "HARD PATHS", "FINDINGS"], rows)


def _path(path: dict[str, Any]) -> str:
    name = path["path"]
    if "seconds" in path:
        text = f"{name} {path['seconds']:g} s"
    elif "poll" in path:
        text = f"{name} at query {path['poll']}"
    elif "code" in path:
        text = f"{name} {path['code']}"
    else:
        text = name
    if "retry_after" in path:
        text += f" (Retry-After {path['retry_after']} s)"
    if path.get("hit") is False:
        text += " (not reached)"
    return text


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip()
            for row in cells]


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="    " + label,
                         subsequent_indent="    " + " " * len(label))


def _short(task_id: str | None) -> str:
    return (task_id or "-")[:8]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
