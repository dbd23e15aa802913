"""``kf2v-mock serve`` as a user runs it: a real process, free ports, the ready file, both regions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mock_server.accounts import KeySpec
from mock_server.cli import build_parser, settings_from_args


def wait_for_file(path: Path, process: subprocess.Popen, deadline: float = 30.0) -> dict:
    """Wait for another process to write its ready file (an external event, not a virtual state)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if path.exists():
            return json.loads(path.read_text())
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("ready file never appeared")


def get_json(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_on_free_ports_writes_ready_file_and_stops_cleanly(tmp_path):
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--beijing-port", "0", "--singapore-port", "0",
         "--ready-file", str(ready), "--api-key", "ap-southeast-1=sk-sg-test", "--seed", "7"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_PROXY": "127.0.0.1"})
    try:
        urls = wait_for_file(ready, process)
        assert set(urls) == {"cn-beijing", "ap-southeast-1"}
        for region, base in urls.items():
            assert base.startswith("http://127.0.0.1:") and base.endswith("/api/v1")
            status, health = get_json(base.removesuffix("/api/v1") + "/_mock/health")
            assert (status, health["region"], health["seed"]) == (200, region, 7)
        # The configured key works in Singapore; Beijing kept its documented default key.
        status, body = get_json(urls["ap-southeast-1"] + "/tasks/abc", "sk-sg-test")
        assert (status, body["output"]["task_status"]) == (200, "UNKNOWN")
        status, body = get_json(urls["cn-beijing"] + "/tasks/abc", "sk-kf2v-mock-beijing")
        assert status == 200
        status, body = get_json(urls["cn-beijing"] + "/tasks/abc", "sk-sg-test")
        assert (status, body["code"]) == (401, "InvalidApiKey")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    # One log line per request, with its request_id.
    assert stderr.count("request_id=") >= 5


def test_command_line_names_and_key_syntax():
    args = build_parser().parse_args([
        "serve", "--host", "0.0.0.0", "--beijing-port", "0", "--singapore-port", "0",
        "--api-key", "cn-beijing=sk-a@team", "--api-key", "ap-southeast-1=sk-b",
        "--data-dir", "/tmp/x", "--seed", "3", "--timing", "realistic"])
    settings = settings_from_args(args)
    assert settings.api_keys == [KeySpec("cn-beijing", "sk-a", "team"),
                                 KeySpec("ap-southeast-1", "sk-b", None)]
    assert (settings.timing, settings.seed, str(settings.data_dir)) == ("realistic", 3, "/tmp/x")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--timing", "slow"])
    with pytest.raises(ValueError):
        KeySpec.parse("mars-1=sk-x")
