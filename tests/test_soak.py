"""The load/soak script (benchmarks/soak.py), short: real SDK clients against a separately started
emulator; nothing acknowledged may be lost, and the script must say so when something is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "benchmarks" / "soak.py"


def run_soak(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(SOAK), "--json", str(report), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads(report.read_text()), done.stdout + done.stderr


def test_short_soak_loses_nothing(tmp_path):
    # 15 s of creating, two clients, every second task through the SDK's upload flow; "--seed"
    # after "--" shows that extra serve arguments are passed through.
    code, report, output = run_soak(tmp_path, "--clients", "2", "--minutes", "0.25",
                                    "--upload-every", "2", "--", "--seed", "3")
    assert code == 0, output
    assert report["lost"] == 0 and report["lost_ids"] == []
    assert report["created"] >= 4 and report["completed"] == report["created"]
    assert report["server_tasks"] == report["created"]
    assert report["server_tasks_not_acknowledged"] == 0
    assert report["errors"] == {} and report["ended_otherwise"] == {}
    assert 0 < report["poll_latency_ms"]["p50"] <= report["poll_latency_ms"]["p99"]
    if sys.platform.startswith("linux"):
        assert report["rss_kb"]["start"] > 0 and report["rss_kb"]["end"] > 0
    assert report["emulator_exit_code"] == 0
    assert "lost 0" in output


def test_a_task_that_never_ends_is_reported_lost(tmp_path):
    # Realistic timing takes minutes per task; with a 2 s drain the first task cannot finish.
    code, report, output = run_soak(tmp_path, "--clients", "1", "--minutes", "0.02",
                                    "--drain-seconds", "2", "--", "--timing", "realistic")
    assert code == 1, output
    assert report["created"] >= 1 and report["lost"] == report["created"]
    assert report["completed"] == 0
