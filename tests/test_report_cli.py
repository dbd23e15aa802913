"""The report card and the chaos run from the command line, as a user runs them: ``kf2v-mock run
--report [--strict]``, ``kf2v-mock run --chaos SEED``, and ``kf2v-mock report`` against a running
``kf2v-mock serve``. These run real processes and real clients on real time (a few seconds)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server.cli import main
from mock_server.testing.serve_process import ServeProcess
from mock_server.traffic.chaos import PATHS

REPO = Path(__file__).resolve().parents[1]
FLAWED = REPO / "examples" / "report-card" / "flawed_client.py"
CORRECT = '''
import sys
sys.path.insert(0, {repo!r})
from tests.report_clients import Api, correct
print(sum(v is not None for v in correct(Api.from_env(), tasks=1)), "videos")
'''


def kf2v_mock(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "KF2V_MOCK_"))}
    return subprocess.run([sys.executable, "-m", "mock_server", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)


def test_run_report_strict_on_the_readme_flawed_client():
    done = kf2v_mock("run", "--quiet", "--report", "--strict", "--", sys.executable, str(FLAWED))
    assert done.returncode == 1, done.stderr  # the client exited 0; the card has errors
    card = done.stderr[done.stderr.index("kf2v-mock report card (end of run"):]
    for rule in ("unknown-not-terminal", "abandoned-task", "poll-after-terminal",
                 "poll-too-fast", "no-retry-on-throttle", "result-not-downloaded",
                 "submit-burst"):
        assert rule in card, card
    assert "1 key, " in card and "2 errors, 3 warnings, 2 info" in card
    assert "scene 2: (done, no video)" in done.stdout  # the client's own output is untouched


def test_run_report_on_a_clean_command_and_bad_thresholds():
    done = kf2v_mock("run", "--quiet", "--report", "--strict", "--", sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    assert "No findings" in done.stderr and "0 keys, 0 requests" in done.stderr
    # Without --report (and no chaos run) nothing is printed.
    done = kf2v_mock("run", "--quiet", "--", sys.executable, "-c", "raise SystemExit(4)")
    assert done.returncode == 4 and "report card" not in done.stderr
    bad = kf2v_mock("run", "--report-threshold", "polls=3", "--", sys.executable, "-c", "pass")
    assert bad.returncode == 2 and "unknown report threshold 'polls'" in bad.stderr


def test_run_chaos_prints_the_seed_and_the_schedule(tmp_path):
    """(That the same seed and client replay the same run is tests/test_chaos.py's, on the
    virtual clock; here the clients wait in real time.)"""
    script = tmp_path / "client.py"
    script.write_text(CORRECT.format(repo=str(REPO)))
    done = kf2v_mock("run", "--quiet", "--chaos", "6", "--chaos-profile", "network", "--",
                     sys.executable, str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 videos"
    assert "No findings" in done.stderr, done.stderr  # the careful client comes through
    chaos = done.stderr[done.stderr.index("Chaos run: seed 6, profile network"):]
    assert "Replay this run: kf2v-mock run --chaos 6 --chaos-profile network" in chaos
    header, *rows = chaos.splitlines()[1:4]
    assert header.split() == ["#", "TASK", "OUTCOME", "HARD", "PATHS", "FINDINGS"]
    # create 1 is throttled (and retried): create 2 gets a 503 poll and a cut download.
    assert [re.findall("|".join(PATHS), row) for row in rows] == [
        ["create-throttled"], ["poll-503", "download-truncated"]], chaos
    assert rows[0].split()[1:3] == ["-", "429"] and rows[1].split()[2] == "SUCCEEDED"


def report(capsys, *args: str) -> tuple[int, str, str]:
    """``kf2v-mock report ARGS`` in this process (the subprocess path is covered above)."""
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_command_against_a_running_emulator(tmp_path, capsys):
    with ServeProcess(workdir=tmp_path) as server:
        base, root = server.urls["cn-beijing"], server.root_url("cn-beijing")
        http = requests.Session()
        http.trust_env = False
        for _ in range(3):  # a task id that does not exist, polled on and on
            http.get(f"{base}/tasks/0c1d3f7e-0000-4000-8000-000000000000",
                     headers={"Authorization": "Bearer sk-kf2v-mock-beijing"})
        table = kf2v_mock("report", "--url", base)
        assert table.returncode == 0, table.stderr
        assert "report card (so far" in table.stdout and "unknown-not-terminal" in table.stdout
        code, out, _ = report(capsys, "--url", root + "/", "--json", "--final")
        card = json.loads(out)
        assert code == 0 and card["final"] is True
        assert [f["rule"] for f in card["findings"]] == ["unknown-not-terminal"]
        assert report(capsys, "--url", root, "--strict")[0] == 1
        code, out, _ = report(capsys, "--url", root, "--strict",
                              "--threshold", "polls_after_unknown=5")
        assert code == 0 and "No findings" in out
        code, out, _ = report(capsys, "--url", root, "--key-id", "000000", "--json")
        assert json.loads(out)["findings"] == [] and card["findings"][0]["key_id"] != "000000"
    code, _, err = report(capsys, "--url", root)
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_chaos_flags_and_their_environment_variables(monkeypatch, capsys):
    from mock_server.cli import build_parser, settings_from_args
    settings = settings_from_args(build_parser().parse_args(["serve", "--chaos", "7",
                                                             "--chaos-profile", "quick"]))
    assert (settings.chaos_seed, settings.chaos_profile) == (7, "quick")
    assert settings_from_args(build_parser().parse_args(["serve"])).chaos_seed is None
    monkeypatch.setenv("KF2V_MOCK_CHAOS", "9")
    assert settings_from_args(build_parser().parse_args(["serve"])).chaos_seed == 9
    monkeypatch.setenv("KF2V_MOCK_CHAOS_PROFILE", "wild")
    from mock_server.cli import main
    assert main(["serve"]) == 2  # a start-up problem: one line, exit status 2
    assert "unknown chaos profile 'wild'" in capsys.readouterr().err
