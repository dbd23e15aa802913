"""The README's examples run as written, against ``kf2v-mock serve`` (only the ports are changed,
from the default 18100/18101 to this emulator's free ones), so the README and the emulator cannot
drift apart:

- every ``bash`` block with a ``curl`` in it: each request must succeed (2xx), except those whose
  line ends with a ``# <status>`` comment saying what it answers;
- the API document's Python sample (README "Sample frames and your own images"), verbatim;
- the quotas-and-journal Python example, whose ``# ...`` comments say what it prints;
- the Node and Go snippets (README "Other clients"), with the ``node`` and ``go`` on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mock_server.testing.serve_process import ServeProcess
from tests.conftest import missing_component

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
EXPECTED_STATUS = re.compile(r"#\s*([1-5]\d\d)\b")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text(encoding="utf-8"))
            if lang == language]


def block_with(language: str, marker: str) -> str:
    (found,) = [b for b in blocks(language) if marker in b]
    return found


CURL_BLOCKS = [b for b in blocks("bash") if re.search(r"^\s*curl |\| curl |\$\(curl ", b, re.M)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServeProcess(workdir=tmp_path_factory.mktemp("readme-serve")) as process:
        yield process


def with_ports(text: str, server: ServeProcess) -> str:
    for default, region in (("18100", "cn-beijing"), ("18101", "ap-southeast-1")):
        port = server.urls[region].split(":")[2].split("/")[0]
        text = re.sub(rf"(127\.0\.0\.1|localhost):{default}\b", f"127.0.0.1:{port}", text)
    return text


def reset(server: ServeProcess) -> None:
    request = urllib.request.Request(server.root_url() + "/_mock/reset", data=b"{}", method="POST")
    with OPENER.open(request, timeout=30) as response:
        assert response.status == 200


def test_the_readme_has_the_examples_this_file_runs():
    assert len(CURL_BLOCKS) >= 6  # raw HTTP, clock, samples, upload flow, fault rules, scenarios
    assert all("<task_id>" not in b and "…/a.png" not in b for b in CURL_BLOCKS)


@pytest.mark.parametrize("block", CURL_BLOCKS, ids=[f"curl-{n}" for n in range(len(CURL_BLOCKS))])
def test_curl_examples_run_as_written(server, tmp_path, block):
    reset(server)
    curl_home = tmp_path / "curl-home"
    curl_home.mkdir()
    # Every request's status goes to stderr; stdout stays what the user would see.
    (curl_home / ".curlrc").write_text('write-out = "%{stderr}readme-http-status %{http_code}\\n"\n')
    env = {**os.environ, "CURL_HOME": str(curl_home), "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", with_ports(block, server)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = [int(s) for s in re.findall(r"^readme-http-status (\d+)$", done.stderr, re.M)]
    assert len(statuses) == len(re.findall(r"^\s*curl |\| curl |\$\(curl ", block, re.M))
    expected = sorted(int(s) for s in EXPECTED_STATUS.findall(block))
    assert sorted(s for s in statuses if not 200 <= s < 300) == expected, done.stdout + done.stderr


def test_the_api_documents_python_sample_runs_with_only_the_base_url_changed(server, tmp_path):
    sample = block_with("python", "def sample_sync_call_kf2v")
    assert "https://wanx.alicdn.com/material/20250318/first_frame.png" in sample  # untouched
    reset(server)
    script = tmp_path / "sample.py"
    script.write_text(with_ports(sample, server), encoding="utf-8")
    env = {**os.environ, "DASHSCOPE_API_KEY": "sk-kf2v-mock-beijing", "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(server.root_url() + "/"), done.stdout  # rsp.output.video_url
    with OPENER.open(last, timeout=60) as video:
        assert video.read(12)[4:8] == b"ftyp"


def test_the_quotas_and_journal_example_prints_what_its_comments_say(server, tmp_path):
    example = block_with("python", "client.videos.jobs.create")
    promised = [m.group(1).split(":")[0].strip()
                for m in re.finditer(r"^print\(.*\)\s+# (.+)$", example, re.M)]
    assert promised  # e.g. "[(200, None), (200, None), (429, 'Throttling.RateQuota')]", "2"
    script = tmp_path / "quotas.py"
    script.write_text(with_ports(example, server), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    for line in promised:
        assert line in printed, (line, printed)
    reset(server)
    clock = urllib.request.Request(server.root_url() + "/_mock/clock", method="POST",
                                   data=json.dumps({"frozen": False}).encode())
    OPENER.open(clock, timeout=30).close()


def run_client_snippet(server, tmp_path, language: str, file_name: str, command: list[str],
                       timeout: float, **env: str) -> None:
    """Run the README's ``language`` snippet against the emulator (as a user would, with the
    base URL and key from the environment): it must print the link of a playable clip."""
    reset(server)
    script = tmp_path / file_name
    script.write_text(block_with(language, "task_status"), encoding="utf-8")
    env = {**os.environ, **env, "DASHSCOPE_HTTP_BASE_URL": server.urls["cn-beijing"],
           "DASHSCOPE_API_KEY": "sk-kf2v-mock-beijing", "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([*command, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    (url,) = done.stdout.split()
    with OPENER.open(url, timeout=60) as video:
        assert video.read(12)[4:8] == b"ftyp"


def test_the_node_snippet_runs(server, tmp_path):
    node = shutil.which("node")
    if node is None:
        missing_component("node is not installed", "scripts/test installs it with apt-get as root")
    run_client_snippet(server, tmp_path, "js", "kf2v.mjs", [node], timeout=120)


def test_the_go_snippet_runs(server, tmp_path):
    go = shutil.which("go")
    if go is None:
        missing_component("go is not installed",
                          "scripts/test installs golang-go with apt-get as root")
    # Go wants a writable build cache; a shared one keeps later runs from compiling net/http again.
    cache = os.environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build")
    run_client_snippet(server, tmp_path, "go", "kf2v.go", [go, "run"], timeout=600,
                       GOCACHE=cache, GOPATH=str(tmp_path / "gopath"),
                       GOTOOLCHAIN="local")  # never fetch another toolchain
