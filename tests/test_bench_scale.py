"""The scale benchmark (benchmarks/bench_scale.py), tiny: it runs end to end on both stores and
reports every figure. The real run is minutes long and is not part of the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_tiny_scale_benchmark_reports_every_figure(tmp_path):
    report = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"),
                           "--sizes", "20,40", "--samples", "4", "--concurrency", "2", "--keys",
                           "2", "--json", str(report)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(report.read_text())["rows"]
    assert [(r["store"], r["size"]) for r in rows] == [("memory", 20), ("memory", 40),
                                                        ("sqlite", 20), ("sqlite", 40)]
    for row in rows:
        assert row["stored"] >= row["size"]
        assert all(row[f"{op}_p50"] > 0 for op in ("create", "query", "list", "cancel"))
        assert row["dump_ms"] > 0 and row["rss_mb"] > 0
    assert rows[-1]["data_mb"] > 0 and rows[-1]["restart_s"] > 0
    assert "| sqlite | " in done.stdout and "load average" in done.stdout
