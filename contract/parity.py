"""Parity bookkeeping for the contract suite: the three parity markers, the check that every test
carries exactly one, the log of real-service runs, and contract/PARITY.md rendered from all that.

Markers (exactly one per test):

- ``parity_verified(date="YYYY-MM-DD", region="cn-beijing")``: passed against the real service;
- ``parity_documented(source="...")``: what the test asserts comes from the documentation;
- ``parity_recorded(source="...")``: what the test asserts is what the real service was recorded
  answering (contract/recordings.py; the source names the recording);
- ``parity_emulator_only(reason="...")``: emulator behaviour with nothing real to compare with.

Each may carry ``assumptions=[...]``: topics of docs/assumptions.md rows the test relies on (its
known or assumed deviations); a topic that is not a row there is a collection error, so the links in
PARITY.md cannot go stale.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

CONTRACT_DIR = Path(__file__).parent
REPO = CONTRACT_DIR.parent
PARITY_MD = CONTRACT_DIR / "PARITY.md"
REAL_RUNS = CONTRACT_DIR / "real-runs.json"
ASSUMPTIONS = REPO / "docs" / "assumptions.md"

MARKERS = {
    "parity_verified": "verified against the real service (date=, region=)",
    "parity_documented": "derived from the documentation (source=)",
    "parity_recorded": "matches a recording of the real service (source=)",
    "parity_emulator_only": "emulator-only behaviour, nothing real to compare with (reason=)",
}


def register_markers(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def parity_marks(item: pytest.Item) -> list[pytest.Mark]:
    return [mark for mark in item.iter_markers() if mark.name in MARKERS]


def assumption_topics(path: Path = ASSUMPTIONS) -> set[str]:
    """The first-column topics of docs/assumptions.md's table."""
    topics = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] not in ("topic", "") and not set(cells[0]) <= {"-"}:
            topics.add(cells[0])
    return topics


def marker_problems(items: list[pytest.Item], root: Path, topics: set[str] | None = None) -> list[str]:
    """Why tests under ``root`` break the one-marker rule (or name an unknown assumption)."""
    problems = []
    for item in items:
        if root not in item.path.parents:
            continue
        marks = parity_marks(item)
        if len(marks) != 1:
            names = ", ".join(m.name for m in marks) or "none"
            problems.append(f"{item.nodeid}: needs exactly one parity marker, has {names}")
            continue
        mark = marks[0]
        if mark.name == "parity_verified" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}",
                                                               str(mark.kwargs.get("date", ""))):
            problems.append(f"{item.nodeid}: parity_verified needs date='YYYY-MM-DD'")
        if mark.name in ("parity_documented", "parity_recorded") and not mark.kwargs.get("source"):
            problems.append(f"{item.nodeid}: {mark.name} needs source=")
        if mark.name == "parity_emulator_only" and not mark.kwargs.get("reason"):
            problems.append(f"{item.nodeid}: parity_emulator_only needs reason=")
        if topics is not None:
            for topic in mark.kwargs.get("assumptions", ()):
                if topic not in topics:
                    problems.append(f"{item.nodeid}: assumption {topic!r} is not a row of "
                                    f"docs/assumptions.md")
    return problems


def check_markers(items: list[pytest.Item], root: Path, topics: set[str] | None = None) -> None:
    problems = marker_problems(items, root, topics)
    if problems:
        raise pytest.UsageError("parity marker check failed:\n  " + "\n  ".join(problems))


# --- the log of real-service runs ----------------------------------------------------------------
def load_real_runs(path: Path = REAL_RUNS) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def record_real_runs(results: dict[str, str], region: str, path: Path = REAL_RUNS) -> None:
    """After a ``--target real`` run: each test's outcome, date and region (skips are not runs)."""
    runs = load_real_runs(path)
    today = date.today().isoformat()
    for nodeid, outcome in results.items():
        if outcome != "skipped":
            runs[nodeid] = {"date": today, "region": region, "outcome": outcome}
    path.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- PARITY.md -----------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(items: list[pytest.Item], root: Path, runs: dict[str, dict[str, str]]) -> str:
    rows = []
    counts = {name: 0 for name in MARKERS}
    for item in sorted((i for i in items if root in i.path.parents), key=lambda i: i.nodeid):
        marks = parity_marks(item)
        if len(marks) != 1:
            continue
        mark = marks[0]
        counts[mark.name] += 1
        basis = (mark.kwargs.get("source") or mark.kwargs.get("reason")
                 or f"real service, {mark.kwargs.get('region', '?')}")
        verified = {"parity_verified": mark.kwargs.get("date"),
                    "parity_recorded": "against a recording"}.get(mark.name, "never")
        run = runs.get(item.nodeid)
        last_run = f"{run['date']} {run['outcome']} ({run['region']})" if run else "—"
        deviations = "; ".join(f"[{t}](../docs/assumptions.md)" for t in
                               mark.kwargs.get("assumptions", ())) or "none known"
        doc = (item.function.__doc__ or "").strip().splitlines()  # type: ignore[attr-defined]
        what = doc[0] if doc else item.name
        name = item.nodeid.removeprefix("contract/")
        rows.append(f"| `{_cell(name)}` | {_cell(what)} | {mark.name.removeprefix('parity_')} | "
                    f"{_cell(basis)} | {verified} | {_cell(last_run)} | {_cell(deviations)} |")
    summary = ", ".join(f"{counts[n]} {n.removeprefix('parity_')}" for n in MARKERS)
    return "\n".join([
        "# Parity of kf2v-mock with the real DashScope kf2v service",
        "",
        "Generated from the contract suite by `python -m pytest contract --collect-only -q "
        "--parity-md contract/PARITY.md`; do not edit by hand (tests/test_contract.py fails when "
        "it is stale). Every test runs against the emulator (default) and against the real service "
        "(`--target real`, see README \"Contract and parity\").",
        "",
        "- **verified**: passed against the real service on the date shown;",
        "- **documented**: asserts what the documentation says (examples in "
        "`contract/openapi.yaml`, sources in `shared/spec/api-facts.md`); not yet run against "
        "the real service unless *last real run* says so;",
        "- **recorded**: asserts what the real service was recorded answering (other people's raw "
        "captures of the same task API, `shared/spec/real-recordings.md`; the basis names the "
        "recording, `contract/recordings.py` holds the facts): verified against a recording;",
        "- **emulator_only**: behaviour of the emulator alone.",
        "",
        "*Last real run* comes from `contract/real-runs.json`, written by `--target real` runs. "
        "*Deviations* are the assumptions a test relies on (rows of "
        "[docs/assumptions.md](../docs/assumptions.md)).",
        "",
        f"{len(rows)} tests: {summary}.",
        "",
        "| test | what | parity | basis | verified | last real run | known or assumed deviations |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
