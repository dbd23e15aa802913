"""``kf2v-mock serve`` as a user runs it: a real process, free ports, the ready file, both regions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mock_server.cli import StartupError, build_parser, settings_from_args
from mock_server.tasks.accounts import KeySpec
from mock_server.testing.serve_process import ServeProcess


def get_json(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_on_free_ports_writes_ready_file_and_stops_cleanly(tmp_path):
    server = ServeProcess("--api-key", "ap-southeast-1=sk-sg-test", "--seed", "7", quiet=False,
                          workdir=tmp_path).start()
    try:
        urls = json.loads(server.ready_file.read_text())
        assert urls == server.urls and set(urls) == {"cn-beijing", "ap-southeast-1"}
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
        exit_status = server.stop()
    assert exit_status == 0
    # One log line per request, with its request_id.
    assert server.logs().count("request_id=") >= 5


def test_command_line_names_and_key_syntax():
    args = build_parser().parse_args([
        "serve", "--host", "0.0.0.0", "--beijing-port", "0", "--singapore-port", "0",
        "--api-key", "cn-beijing=sk-a@team", "--api-key", "ap-southeast-1=sk-b",
        "--data-dir", "/tmp/x", "--seed", "3", "--timing", "realistic"])
    settings = settings_from_args(args)
    assert settings.api_keys == [KeySpec("cn-beijing", "sk-a", "team"),
                                 KeySpec("ap-southeast-1", "sk-b", None)]
    assert (settings.timing, settings.seed, str(settings.data_dir)) == ("realistic", 3, "/tmp/x")
    with pytest.raises(StartupError, match="invalid choice: 'slow'|'slow' is not a timing profile"):
        build_parser().parse_args(["serve", "--timing", "slow"])
    with pytest.raises(ValueError):
        KeySpec.parse("mars-1=sk-x")


CHILD = '''
import json, os, sys, urllib.request
from dashscope import VideoSynthesis
sys.path.insert(0, {repo!r})
from mock_server.testing.samples import frame_pair

opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
root = os.environ["DASHSCOPE_HTTP_BASE_URL"].removesuffix("/api/v1")
health = json.load(opener.open(root + "/_mock/health", timeout=10))
first, last = frame_pair(1, (320, 240)).data_urls()
rsp = VideoSynthesis.async_call(model="wan2.1-kf2v-plus", first_frame_url=first, last_frame_url=last)
print(health["region"], health["seed"], rsp.status_code, rsp.output.task_status,
      os.environ["KF2V_MOCK_BEIJING_URL"] != os.environ["KF2V_MOCK_SINGAPORE_URL"])
sys.exit(3)
'''


def test_run_serves_runs_the_command_against_it_and_exits_with_its_status(tmp_path):
    """The one-step CI recipe: `kf2v-mock run [serve flags] -- COMMAND`."""
    script = tmp_path / "suite.py"
    script.write_text(CHILD.format(repo=str(Path(__file__).parents[1])))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "KF2V_MOCK_"))}
    ready = tmp_path / "ready.json"
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "run", "--region", "ap-southeast-1", "--seed", "3",
         "--quiet", "--ready-file", str(ready), "--", sys.executable, str(script)],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 3, done.stderr
    # The SDK found the emulator through the environment alone, in the chosen region.
    assert done.stdout.split() == ["ap-southeast-1", "3", "200", "PENDING", "True"], done.stderr
    urls = json.loads(ready.read_text())
    assert all(":18100/" not in url and ":18101/" not in url for url in urls.values())  # free ports
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.URLError, match="refused"):  # stopped once the command exited
        direct.open(urls["cn-beijing"].removesuffix("/api/v1") + "/_mock/health", timeout=5)


def test_run_without_a_command_or_with_a_missing_one(tmp_path):
    base = [sys.executable, "-m", "mock_server", "run", "--quiet"]
    usage = subprocess.run(base + ["--seed", "1"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "give the command to run after --" in usage.stderr
    missing = subprocess.run(base + ["--", str(tmp_path / "no-such-command")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 127 and "cannot run" in missing.stderr
