"""Start-up problems, as a new user meets them: one line that says what is wrong and how to fix it,
exit status 2, no traceback (mock_server/cli.py, ``StartupError``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.cli import main, unknown_env_names
from mock_server.testing.serve_process import ServeError, ServeProcess
from tests.conftest import missing_component

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def busy_port():
    """A loopback port something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def failed_start(*flags: str, workdir: Path, data_dir: Path | None = None, prefix: tuple = (),
                 env: dict | None = None) -> str:
    """Start ``kf2v-mock serve`` expecting it to refuse; its whole output, checked to be one line
    and exit status 2."""
    server = ServeProcess(*flags, data_dir=data_dir, workdir=workdir, quiet=False, env=env)
    server.command = [*prefix, *server.command]
    with pytest.raises(ServeError):
        server.start()
    output = server.logs()
    assert server.process.returncode == 2, output
    assert len(output.splitlines()) == 1 and output.startswith("kf2v-mock: error: "), output
    assert "Traceback" not in output
    return output


def run_main(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("kf2v-mock: error: "), err
    return err


# --- listeners --------------------------------------------------------------------------------------
@pytest.mark.parametrize("region_flag", ["--beijing-port", "--singapore-port", "--proxy-port"])
def test_a_busy_port_names_the_port_and_the_way_out(busy_port, tmp_path, region_flag):
    line = failed_start(region_flag, str(busy_port), workdir=tmp_path)
    assert f"port {busy_port}" in line and "already in use" in line
    assert f"{region_flag} 0 picks a free one" in line


def test_scripts_serve_with_the_port_busy_prints_one_line_and_exits_2(busy_port):
    """The README's first command, on a machine where the port is taken (set through the
    environment, as a user would; the default port behaves alike)."""
    venv_entry = REPO / ".venv" / "bin" / "kf2v-mock"
    if not venv_entry.exists() or (REPO / "pyproject.toml").stat().st_mtime > venv_entry.stat().st_mtime:
        # scripts/serve would (re)install the venv first: scripts/test has always done it in CI.
        if os.environ.get("CI"):
            pytest.fail("scripts/serve would set up .venv again; scripts/test installs it first")
        pytest.skip(".venv is not set up or older than pyproject.toml (scripts/serve would install)")
    env = {**os.environ, "KF2V_MOCK_BEIJING_PORT": str(busy_port)}
    done = subprocess.run([str(REPO / "scripts" / "serve")], capture_output=True, text=True,
                          timeout=60, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert output.splitlines() == [output.strip()] and f"port {busy_port}" in output
    assert "--beijing-port 0" in output


def test_a_host_that_is_not_ours(tmp_path):
    line = failed_start("--host", "192.0.2.1", workdir=tmp_path)  # TEST-NET-1: never assigned
    assert "cannot listen on --host 192.0.2.1" in line and "127.0.0.1" in line


# --- the data dir ----------------------------------------------------------------------------------
def test_a_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("not a directory")
    line = failed_start(workdir=tmp_path / "w", data_dir=tmp_path / "data")
    assert "is not a directory" in line and "--data-dir" in line


def test_a_corrupted_state_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "state.sqlite3").write_bytes(b"\x13 not SQLite at all " * 300)
    line = failed_start(workdir=tmp_path / "w", data_dir=tmp_path / "data")
    assert "state.sqlite3 cannot be read as kf2v-mock state" in line and "move it away" in line


def test_a_data_dir_in_use_by_another_process(tmp_path):
    with ServeProcess(data_dir=tmp_path / "data", workdir=tmp_path / "first"):
        line = failed_start(workdir=tmp_path / "second", data_dir=tmp_path / "data")
    assert "in use by another kf2v-mock process" in line and "another --data-dir" in line


def _without_root_powers() -> tuple:
    """A command prefix under which file permissions apply (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        missing_component("running as root without setpriv: permissions cannot be tested",
                          "scripts/test installs util-linux with apt-get as root")
    drop = "-dac_override,-dac_read_search"
    return ("setpriv", "--bounding-set", drop, "--inh-caps", drop)


@pytest.mark.parametrize("case", ["unwritable parent", "read-only dir", "read-only state file"])
def test_a_data_dir_that_cannot_be_written(tmp_path, case):
    prefix = _without_root_powers()
    locked = tmp_path / "locked"
    locked.mkdir()
    data_dir = locked / "data" if case == "unwritable parent" else locked
    if case == "read-only state file":
        sqlite3.connect(locked / "state.sqlite3").execute("PRAGMA user_version=1").connection.close()
        (locked / "state.sqlite3").chmod(0o444)
    else:
        locked.chmod(0o555)
    try:
        line = failed_start(workdir=tmp_path / "w", data_dir=data_dir, prefix=prefix)
    finally:
        locked.chmod(0o755)
    assert f"--data-dir {data_dir} is not writable" in line and "permissions" in line


def test_the_data_dir_in_use_is_logged(tmp_path):
    # Read once stopped: the line follows the ready file, so a busy machine may not show it yet.
    with ServeProcess(data_dir=tmp_path / "data", workdir=tmp_path / "w", quiet=False) as server:
        pass
    assert f"data dir {tmp_path / 'data'} (kept across restarts)" in server.logs()
    with ServeProcess(workdir=tmp_path / "w2", quiet=False) as server:
        pass
    assert "(temporary: removed at exit, nothing kept)" in server.logs()


# --- the ready file --------------------------------------------------------------------------------
def test_an_earlier_ready_file_is_removed_at_start_even_when_the_start_fails(busy_port, tmp_path):
    stale = tmp_path / "ready.json"
    stale.write_text('{"cn-beijing": "http://127.0.0.1:1/api/v1"}')
    failed_start("--beijing-port", str(busy_port), "--ready-file", str(stale), workdir=tmp_path / "w")
    assert not stale.exists()  # a CI script polling for it never reads old ports


def test_the_ready_file_is_written_once_complete(tmp_path):
    with ServeProcess(workdir=tmp_path) as server:
        assert json.loads(server.ready_file.read_text()) == server.urls
        assert list(tmp_path.glob("*.tmp")) == []  # written to a temp name, renamed into place


def test_a_ready_file_in_a_missing_directory(capsys, tmp_path):
    line = run_main(capsys, "serve", "--ready-file", str(tmp_path / "nowhere" / "ready.json"))
    assert "--ready-file" in line and "does not exist" in line


# --- flags and environment values: refused while the command line is read ---------------------------
@pytest.mark.parametrize("argv, says", [
    (["--render-workers", "0"], "argument --render-workers: must be at least 1"),
    (["--max-running", "0"], "argument --max-running: must be at least 1"),
    (["--query-qps", "x"], "argument --query-qps: 'x' is not a whole number"),
    (["--beijing-port", "70000"], "argument --beijing-port: 70000 is not a port"),
    (["--timing", "slow"], "argument --timing"),
    (["--api-key", "mars=sk"], "argument --api-key: unknown region 'mars'"),
    (["--asset-map", "cdn.example.com=/tmp"], "argument --asset-map: 'cdn.example.com' is not an http"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--log-format", "xml"], "argument --log-format"),
])
def test_impossible_flag_values(capsys, argv, says):
    line = run_main(capsys, "serve", *argv)
    assert says in line and "--help)" in line


@pytest.mark.parametrize("name, value, says", [
    ("KF2V_MOCK_SEED", "abc", "KF2V_MOCK_SEED='abc': 'abc' is not a whole number"),
    ("KF2V_MOCK_BEIJING_PORT", "http", "KF2V_MOCK_BEIJING_PORT='http'"),
    ("KF2V_MOCK_TIMING", "slow", "'slow' is not a timing profile (choose from fast, realistic)"),
    ("KF2V_MOCK_NO_QUOTAS", "maybe", "not a yes/no value"),
    ("KF2V_MOCK_RENDER_WORKERS", "0", "KF2V_MOCK_RENDER_WORKERS='0': must be at least 1"),
    ("KF2V_MOCK_API_KEYS", "cn-beijing", "KF2V_MOCK_API_KEYS='cn-beijing': wants REGION=KEY"),
    ("KF2V_MOCK_ASSET_MAP", "https://cdn.example.com/=/no/such/dir", "is not a directory"),
    ("KF2V_MOCK_LOG_LEVEL", "loud", "KF2V_MOCK_LOG_LEVEL='loud': 'loud' is not one of debug, info"),
    ("KF2V_MOCK_PROXY_PORT", "-1", "KF2V_MOCK_PROXY_PORT='-1': -1 is not a port"),
])
def test_bad_environment_values(capsys, monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    assert says in run_main(capsys, "serve")


def test_run_refuses_the_same_way(capsys):
    line = run_main(capsys, "run", "--render-workers", "0", "--", "true")
    assert "must be at least 1" in line


def test_unknown_environment_names_are_pointed_out(monkeypatch):
    monkeypatch.setenv("KF2V_MOCK_SEEDS", "3")  # a typo would otherwise be ignored silently
    monkeypatch.setenv("KF2V_MOCK_BEIJING_URL", "http://x")  # set by `kf2v-mock run`: fine
    monkeypatch.setenv("KF2V_MOCK_QUIET", "1")
    assert "KF2V_MOCK_SEEDS" in unknown_env_names()
    assert not {"KF2V_MOCK_BEIJING_URL", "KF2V_MOCK_QUIET"} & set(unknown_env_names())


def test_help_and_version_still_exit_0():
    for argv in (["--version"], ["serve", "--help"]):
        done = subprocess.run([sys.executable, "-m", "mock_server", *argv], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and done.stdout, done.stderr
