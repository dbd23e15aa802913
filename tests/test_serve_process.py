"""``ServeProcess``, the one launcher of ``kf2v-mock serve`` as a child process (used by the kill -9
tests, the parity suite and the soak benchmark, and offered to users' own harnesses)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from mock_server import ServeProcess
from mock_server.testing.serve_process import ServeError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health(server: ServeProcess, region: str) -> dict:
    with _OPENER.open(server.root_url(region) + "/_mock/health", timeout=10) as response:
        return json.load(response)


def test_serves_both_regions_on_free_ports_and_cleans_up():
    with ServeProcess("--seed", "5", quiet=False) as server:
        assert server.running and server.pid > 0
        for region in ("cn-beijing", "ap-southeast-1"):
            assert server.base_url(region) == server.root_url(region) + "/api/v1"
            assert (health(server, region)["region"], health(server, region)["seed"]) == (region, 5)
        assert "listening on" in server.logs()
        workdir = server.workdir
    assert not server.running and not workdir.exists()


def test_kill_then_restart_on_the_same_data_dir(tmp_path):
    first = ServeProcess(data_dir=tmp_path / "data", workdir=tmp_path / "one").start()
    urls = first.urls
    first.kill()
    assert not first.running and first.process.returncode == -9
    second = ServeProcess(data_dir=tmp_path / "data", workdir=tmp_path / "two").start()
    try:
        assert health(second, "cn-beijing")["status"] == "ok"
        assert second.urls.keys() == urls.keys()
    finally:
        assert second.stop() == 0


def test_a_process_that_cannot_start_raises_with_its_log(tmp_path):
    server = ServeProcess("--timing", "no-such-profile", workdir=tmp_path)
    with pytest.raises(ServeError, match="no-such-profile"):
        server.start()
    assert server.process.returncode == 2 and not server.running
