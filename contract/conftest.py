"""The parity suite's target, options and bookkeeping.

``pytest contract/`` starts ``kf2v-mock serve`` itself and runs every test against it;
``pytest contract/ --target real --region cn-beijing`` runs the same tests against the real service
with the key from DASHSCOPE_API_KEY (every test skips, saying why, when there is none).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dashscope
import pytest

from contract import parity
from contract.snapshots import Snapshots
from contract.targets import BEIJING, EMULATOR_KEYS, REAL_BASE, SINGAPORE, Api, Target, observe
from mock_server.testing.serve_process import ServeProcess

HERE = Path(__file__).parent
_real_results: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kf2v-contract", "kf2v-mock contract suite (contract/)")
    group.addoption("--target", choices=("emulator", "real"), default="emulator",
                    help="run the parity suite against the emulator (default; started by the "
                         "suite) or the real DashScope service (key from DASHSCOPE_API_KEY)")
    group.addoption("--region", choices=(BEIJING, SINGAPORE), default=BEIJING,
                    help="region to test (default cn-beijing)")
    group.addoption("--parity-md", metavar="PATH", default=None,
                    help="write the parity table (contract/PARITY.md) for the collected tests")


def pytest_configure(config: pytest.Config) -> None:
    parity.register_markers(config)
    # Each run uses only its region's snapshots (and a collect-only run none): the others are
    # unused, which must neither fail the run nor, when recording, delete them.
    config.option.warn_unused_snapshots = True
    config.option.no_cleanup = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parity.check_markers(items, HERE, parity.assumption_topics())
    if config.getoption("--parity-md"):
        Path(config.getoption("--parity-md")).write_text(
            parity.render(items, HERE, parity.load_real_runs()), encoding="utf-8")
    if config.getoption("--target") == "real":
        skip = pytest.mark.skip(reason="emulator-only behaviour: nothing real to compare with")
        for item in items:
            if HERE in item.path.parents and item.get_closest_marker("parity_emulator_only"):
                item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid.startswith("contract/") and (report.when == "call" or report.outcome != "passed"):
        if report.when == "call" or report.nodeid not in _real_results:
            _real_results[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if (config.getoption("--target", "emulator") == "real" and _real_results
            and any(outcome != "skipped" for outcome in _real_results.values())):
        parity.record_real_runs(_real_results, config.getoption("--region"))


# --- the target ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def target(request, tmp_path_factory) -> Target:
    region = request.config.getoption("--region")
    if request.config.getoption("--target") == "real":
        key = os.environ.get("DASHSCOPE_API_KEY")
        if not key:
            pytest.skip(f"--target real needs a {region} key in DASHSCOPE_API_KEY "
                        "(none set; nothing was sent to the real service)")
        other = SINGAPORE if region == BEIJING else BEIJING
        yield Target("real", region, REAL_BASE[region], key, REAL_BASE[other])
        return
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    process = ServeProcess("--seed", "0", data_dir=tmp_path_factory.mktemp("contract-data")).start()
    other = SINGAPORE if region == BEIJING else BEIJING
    target = Target("emulator", region, process.urls[region], EMULATOR_KEYS[region],
                    process.urls[other])
    target.session.trust_env = False
    target.freeze()  # time moves only when a test moves it
    yield target
    process.stop()
    process.cleanup()


@pytest.fixture(autouse=True)
def fresh_rate_window(request):
    """Quotas are on, as on the real service (2 submits per second per account and model). Real
    tests are seconds apart; on the emulator's frozen clock they would all share one instant, so
    each test starts one virtual second after the previous one."""
    if "target" in request.fixturenames:
        target = request.getfixturevalue("target")
        if target.is_emulator:
            target.advance(1.0)


@pytest.fixture(scope="session")
def api(target) -> Api:
    return Api(target)


@pytest.fixture
def clock(target) -> Target:
    """The emulator's clock; tests that need it cannot run against the real service."""
    if not target.is_emulator:
        pytest.skip("needs the emulator's clock (would take 24 h of real time against the real "
                    "service)")
    return target


@pytest.fixture
def running_clock(target):
    """Let the emulator's clock run for code that waits in real time (the SDK's call/wait)."""
    @contextlib.contextmanager
    def run():
        if target.is_emulator:
            target.freeze(False)
        try:
            yield
        finally:
            if target.is_emulator:
                target.freeze(True)
    return run


@pytest.fixture
def sdk(target, monkeypatch):
    """The official SDK, pointed at the target the documented way (dashscope.base_http_api_url)."""
    monkeypatch.setattr(dashscope, "base_http_api_url", target.base_url)
    return dashscope


@pytest.fixture
def snap(snapshot, target, request) -> Snapshots:
    return Snapshots(snapshot, target, request.config.option.update_snapshots)


@pytest.fixture(scope="session")
def generation(api):
    """One generation, shared: created over raw HTTP with the documented prompt at the cheapest
    tier, then polled to the end (the only billed task of the raw-HTTP tests)."""
    created = api.create()
    assert created.status == 200, created.body
    seen = observe(api, created.body["output"]["task_id"], created.body["output"]["task_status"])
    return created, seen
