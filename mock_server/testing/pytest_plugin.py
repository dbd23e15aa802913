"""pytest plugin (entry point ``pytest11``): the emulator as fixtures.

    def test_my_code(kf2v, dashscope_env):
        video = make_video("first.png", "last.png")      # unmodified code using the SDK
        assert kf2v.tasks()[0]["status"] == "SUCCEEDED"

Fixtures: ``kf2v_server`` (one emulator per session and per xdist worker, free ports, its own data
dir; override ``kf2v_settings`` to change its Settings), ``kf2v`` (state reset before each test;
clock, faults, journal, wait_for), ``dashscope_env`` (environment and SDK module pointed at the
emulator, restored afterwards), ``kf2v_region`` (which region ``dashscope_env`` points at; parametrize
it to run a test in both), ``kf2v_frames`` (sample frames), ``kf2v_intercept`` (instead of
``dashscope_env``: code keeps its production URLs and reaches the emulator through the intercepting
proxy). Options: ``--kf2v-timing``, ``--kf2v-seed``, ``--kf2v-clock``, ``--kf2v-quotas`` (or the ini
keys ``kf2v_timing``, ``kf2v_seed``, ``kf2v_clock``, ``kf2v_quotas``); ``--kf2v-report``,
``--kf2v-chaos SEED``, ``--kf2v-chaos-profile`` (``kf2v_report``, ``kf2v_chaos``,
``kf2v_chaos_profile``) print client report cards and run a seeded chaos run.

This module is imported by every pytest run in an environment where kf2v-mock is installed, so it
imports nothing heavy at module level: the server, aiohttp and the SDK load only when a fixture is used.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from ..report.card import ReportCard
    from .embedded import EmbeddedServer
    from .samples.frames import FrameFactory

BEIJING = "cn-beijing"
SINGAPORE = "ap-southeast-1"
CLOCK_MODES = ("running", "frozen")
STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
_LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"
# Never through a proxy: the emulator is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- options -------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kf2v-mock", "kf2v-mock emulator fixtures")
    group.addoption("--kf2v-timing", default=None, metavar="PROFILE",
                    help="timing profile of the kf2v emulator: fast (default) or realistic")
    group.addoption("--kf2v-seed", default=None, type=int, metavar="N",
                    help="seed of the kf2v emulator: the same task ids, timings and clips on "
                         "every run (default: random, like the real service)")
    group.addoption("--kf2v-clock", default=None, choices=CLOCK_MODES,
                    help="the clock at the start of each test: running (default) or frozen")
    group.addoption("--kf2v-quotas", default=None, choices=("on", "off"),
                    help="the documented rate limits: on (default, faithful) or off")
    parser.addini("kf2v_timing", "kf2v emulator timing profile (fast|realistic)", default="fast")
    parser.addini("kf2v_seed", "kf2v emulator seed (empty: random)", default="")
    parser.addini("kf2v_clock", "clock at the start of each test (running|frozen)",
                  default="running")
    parser.addini("kf2v_quotas", "the documented rate limits (on|off)", default="on")
    _add_report_options(parser, group)


# --- the client report card and the chaos run: options ----------------------------------------------
def _add_report_options(parser: pytest.Parser, group) -> None:
    group.addoption("--kf2v-report", default=None, choices=("on", "off"),
                    help="print each test's client report card (when it has findings) in the "
                         "terminal summary: off (default) or on")
    group.addoption("--kf2v-chaos", default=None, type=int, metavar="SEED",
                    help="a seeded chaos run: every test's creates and tasks take hard paths "
                         "drawn from SEED and the test's id (printed with the report card)")
    group.addoption("--kf2v-chaos-profile", default=None, metavar="NAME",
                    help="the chaos profile: default, quick, network or lifecycle")
    parser.addini("kf2v_report", "print client report cards in the terminal summary (on|off)",
                  default="off")
    parser.addini("kf2v_chaos", "seed of a chaos run (empty: off)", default="")
    parser.addini("kf2v_chaos_profile", "chaos profile", default="default")


def _chaos_option(config: pytest.Config) -> tuple[int, str] | None:
    """(seed, profile) of the chaos run the options ask for, or None."""
    seed = _option(config, "chaos")
    if seed in ("", "None"):
        return None
    from ..traffic.chaos import PROFILES
    profile = str(config.getoption("--kf2v-chaos-profile")
                  or config.getini("kf2v_chaos_profile")).strip()
    if profile not in PROFILES:
        raise pytest.UsageError(f"kf2v chaos profile must be one of {', '.join(PROFILES)}, "
                                f"not {profile!r}")
    try:
        return int(seed), profile
    except ValueError:
        raise pytest.UsageError("kf2v chaos seed must be an integer") from None


def _report_wanted(config: pytest.Config) -> bool:
    value = _option(config, "report").lower()
    if value not in ("on", "off", "true", "false", "1", "0"):
        raise pytest.UsageError(f"kf2v report must be on or off, not {value!r}")
    return value in ("on", "true", "1")


def pytest_configure(config: pytest.Config) -> None:
    if _report_wanted(config) or _chaos_option(config) is not None:
        config.pluginmanager.register(_ReportCards(), "kf2v-report-cards")


class _ReportCards:
    """Collects the cards the ``kf2v`` fixture attaches to each test's teardown report (so they
    also come back from xdist workers) and prints them in the terminal summary."""
    PROPERTY = "kf2v_report"

    def __init__(self) -> None:
        self.cards: list[tuple[str, str]] = []
        self.clean = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == self.PROPERTY:
                if value:
                    self.cards.append((report.nodeid, value))
                else:
                    self.clean += 1

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        if not self.cards and not self.clean:
            return
        terminalreporter.section("kf2v-mock client report cards")
        for nodeid, text in self.cards:
            terminalreporter.write_line(nodeid)
            for line in text.splitlines():
                terminalreporter.write_line("  " + line)
            terminalreporter.write_line("")
        terminalreporter.write_line(f"{self.clean} test(s) with a clean card and no chaos run, "
                                    f"{len(self.cards)} shown above")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--kf2v-{name}")
    return str(value if value is not None else config.getini(f"kf2v_{name}")).strip()


@dataclasses.dataclass(frozen=True)
class PluginOptions:
    timing: str
    seed: int | None  # None: random task ids, like the real service
    clock: str
    quotas: bool

    @classmethod
    def from_config(cls, config: pytest.Config) -> "PluginOptions":
        from ..tasks.timelines import PROFILES
        timing, clock, quotas = _option(config, "timing"), _option(config, "clock"), _option(config, "quotas")
        if timing not in PROFILES:
            raise pytest.UsageError(f"kf2v timing must be one of {', '.join(PROFILES)}, not {timing!r}")
        if clock not in CLOCK_MODES:
            raise pytest.UsageError(f"kf2v clock must be running or frozen, not {clock!r}")
        if quotas.lower() not in ("on", "off", "true", "false", "1", "0"):
            raise pytest.UsageError(f"kf2v quotas must be on or off, not {quotas!r}")
        try:
            seed = int(_option(config, "seed")) if _option(config, "seed") else None
        except ValueError:
            raise pytest.UsageError("kf2v seed must be an integer") from None
        return cls(timing, seed, clock, quotas.lower() in ("on", "true", "1"))


def pytest_report_header(config: pytest.Config) -> str:
    chaos = _chaos_option(config)
    return (f"kf2v-mock: timing={_option(config, 'timing')} seed={_option(config, 'seed') or 'random'} "
            f"clock={_option(config, 'clock')} quotas={_option(config, 'quotas')}"
            + (f" chaos={chaos[0]}/{chaos[1]}" if chaos else ""))


# --- the controller a test gets --------------------------------------------------------------------
class Kf2vAdminError(RuntimeError):
    """An admin call (``/_mock/...``) the emulator refused or does not have."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status, self.body = status, body


class Kf2v:
    """One test's handle on the emulator. Every method returns once the change has taken effect."""

    def __init__(self, server: "EmbeddedServer"):
        self.server = server

    # addresses and keys
    def base_url(self, region: str = BEIJING) -> str:
        """The SDK's base URL for ``region``: ``http://127.0.0.1:<port>/api/v1``."""
        return self.server.urls[region]

    def root_url(self, region: str = BEIJING) -> str:
        return self.server.root_url(region)

    def api_key(self, region: str = BEIJING) -> str:
        """A key valid in ``region`` (its documented default key)."""
        return self.server.call(self.server.emulator.keys.default_key, region)

    # the virtual clock
    def now(self) -> datetime:
        return self.server.call(self.server.emulator.clock.now)

    def advance(self, seconds: float) -> datetime:
        """Move the virtual clock forward (tasks progress, links expire) without sleeping."""
        return self.server.call(self.server.emulator.clock.advance, seconds)

    def freeze(self, frozen: bool = True) -> datetime:
        """Stop the clock (``freeze(False)`` lets it run at real speed again)."""
        return self.server.call(self.server.emulator.clock.freeze, frozen)

    def drain(self) -> None:
        """Wait until every accepted clip has been rendered."""
        self.server.drain()

    # inspection
    def tasks(self) -> list[dict]:
        """Every task with its full timeline (``GET /_mock/tasks``, page by page), oldest first."""
        pages = [self.admin("GET", "/_mock/tasks")]
        while pages[-1].get("older"):
            pages.append(self.admin("GET", f"/_mock/tasks?before={pages[-1]['older']}"))
        return [task for page in reversed(pages) for task in page["tasks"]]

    def task(self, task_id: str) -> dict:
        for task in self.tasks():
            if task["task_id"] == task_id:
                return task
        raise LookupError(f"the emulator has no task {task_id}")

    # the client report card and the chaos run
    def report(self, *, final: bool = True, thresholds: dict[str, Any] | None = None,
               **filters: str) -> "ReportCard":
        """This test's client report card (``GET /_mock/report``): what the client code did
        wrong so far, with evidence. ``final`` (default): judge as if the client has finished.
        ``filters``: ``key_id``, ``account``, ``since``, ``region``; ``thresholds``: see
        ``mock_server/report/thresholds.py``."""
        from ..report.card import ReportCard
        params = {**filters, **(thresholds or {}), **({"final": "true"} if final else {})}
        return ReportCard.from_json(
            self.admin("GET", "/_mock/report?" + urllib.parse.urlencode(params)))

    def assert_client_ok(self, ignore: list[str] | tuple[str, ...] = (), *,
                         thresholds: dict[str, Any] | None = None, **filters: str) -> "ReportCard":
        """Fail the test when the card has an error or a warning (rules in ``ignore`` aside);
        returns the card."""
        card = self.report(thresholds=thresholds, **filters)
        bad = card.worse_than_info(ignore)
        if bad:
            lines = [f"{f['severity']} {f['rule']}: {f['summary']} (fix: {f['fix']})" for f in bad]
            raise AssertionError("the client report card is not clean:\n  " + "\n  ".join(lines))
        return card

    def chaos(self, seed: int, profile: str = "default") -> dict:
        """Start a seeded chaos run for the rest of this test (``POST /_mock/chaos``)."""
        return self.admin("POST", "/_mock/chaos", {"seed": seed, "profile": profile})

    def requests(self, **filters: Any) -> list[dict]:
        """The request journal (``GET /_mock/requests``), oldest first: each entry has method,
        path, region, api_key_id, status, code, latency_ms, request_id, task_id, endpoint, time,
        faults, reason, quota and the exchanged headers and bodies. ``filters`` are the list's:
        ``endpoint="create"``, ``status=429`` (or ``"4xx"``), ``code``, ``method``, ``region``,
        ``api_key_id``, ``task_id``, ``request_id``, ``path``, ``path_prefix``, ``since``/``until``
        (virtual time: a datetime or ISO text), ``fault`` (a rule id), ``reason`` (text it
        contains, ``"*"``: any), ``min_latency_ms``, and ``order``/``limit``/``brief``."""
        query = {name: _query_value(value) for name, value in filters.items() if value is not None}
        path = "/_mock/requests" + ("?" + urllib.parse.urlencode(query) if query else "")
        return self.admin("GET", path)["requests"]

    def request(self, request_id: str) -> dict:
        """One journal entry, by the ``request_id`` the client got (``GET /_mock/requests/{id}``)."""
        return self.admin("GET", f"/_mock/requests/{urllib.parse.quote(request_id)}")

    # faults
    def fault(self, **rule: Any) -> dict:
        """Add a fault rule (``POST /_mock/faults``) and return it with its ``id``, e.g.
        ``kf2v.fault(match={"endpoint": "query"}, error={"code": "Throttling"}, times=1)``."""
        return self.admin("POST", "/_mock/faults", rule)

    def faults(self) -> list[dict]:
        return self.admin("GET", "/_mock/faults")["faults"]

    def clear_faults(self, rule_id: str | None = None) -> None:
        self.admin("DELETE", "/_mock/faults" + (f"/{rule_id}" if rule_id else ""))

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API (``/_mock/...``) with the standard library only; JSON in and out."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.root_url() + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                detail: Any = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise Kf2vAdminError(method, path, error.code, detail) from None
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        """Forget every task, upload, file, fault rule, journal entry and quota counter."""
        self.admin("POST", "/_mock/reset")

    # waiting without sleeping
    def wait_for(self, task_id: str, status: str = "SUCCEEDED", *, max_steps: int = 100) -> dict:
        """Advance the virtual clock to the task's next transition until it reports ``status``
        (waiting for its clip to be rendered where SUCCEEDED needs it); returns its timeline.
        Raises AssertionError when the task ends in another state."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        for _ in range(max_steps):
            outcome, detail = self.server.call(self._step, task_id, status)
            if outcome == "done":
                return self.task(task_id)
            if outcome == "fail":
                raise AssertionError(detail)
            if outcome == "drain":
                self.server.drain()
        raise AssertionError(f"task {task_id} did not reach {status} in {max_steps} steps")

    def _step(self, task_id: str, target: str) -> tuple[str, str]:
        """On the server's loop: report, or move the clock to the task's next transition."""
        from ..tasks.clock import ClockError
        emulator = self.server.emulator
        task = emulator.service.find(task_id)
        if task is None:
            return "fail", f"the emulator has no task {task_id}"
        now = emulator.clock.now()
        current = task.status_at(now)
        if current == target:
            return "done", current
        if current in TERMINAL and target != "UNKNOWN" or current == "UNKNOWN":
            reason = f" ({task.failure.code}: {task.failure.message})" if task.failure else ""
            return "fail", f"task {task_id} is {current}{reason}, not {target}"
        moments = [task.scheduled_time, task.end_time]
        if target == "UNKNOWN":
            moments.append(task.expires_at)
        upcoming = [m for m in moments if m is not None and m > now]
        if not upcoming:
            return "drain", "its time is up; the clip is still being rendered"
        try:
            emulator.clock.set(min(upcoming))
        except ClockError:  # a running clock got there first
            pass
        return "advanced", current


def _query_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else ""
    return str(value)


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kf2v_settings() -> dict[str, Any]:
    """Overrides for the emulator's ``Settings`` (override this fixture, session scope), e.g.
    ``{"api_keys": [KeySpec.parse("cn-beijing=sk-team-a@team")], "max_running": 5}``."""
    return {}


@pytest.fixture(scope="session")
def kf2v_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                kf2v_settings: dict[str, Any]):
    """The emulator for this session (or xdist worker): both regions on free loopback ports."""
    from ..config import Settings
    from .embedded import EmbeddedServer

    options = PluginOptions.from_config(request.config)
    values: dict[str, Any] = dict(
        beijing_port=0, singapore_port=0, api_keys=[], seed=options.seed, timing=options.timing,
        data_dir=tmp_path_factory.mktemp("kf2v-mock"), log_requests=False,
        clock_frozen=options.clock == "frozen",
        render_preset="ultrafast",  # a valid H.264 clip either way; tests want it quickly
        quotas=options.quotas)
    values.update(kf2v_settings)
    server = EmbeddedServer(Settings(**values)).start()
    yield server
    server.stop()


@pytest.fixture
def kf2v(kf2v_server, request: pytest.FixtureRequest) -> Iterator[Kf2v]:
    """A fresh emulator for this test: no tasks, uploads, faults or journal; the clock running
    (or frozen with ``--kf2v-clock frozen``); with ``--kf2v-chaos`` a chaos run of its own, and
    with ``--kf2v-report`` or chaos its report card is kept for the terminal summary."""
    handle = Kf2v(kf2v_server)
    handle.reset()
    handle.freeze(_option(request.config, "clock") == "frozen")
    chaos = _chaos_option(request.config)
    if chaos is not None:  # the same seed and test replay the same schedule, in any order
        handle.admin("POST", "/_mock/chaos", {"seed": chaos[0], "profile": chaos[1],
                                              "label": request.node.nodeid})
    elif kf2v_server.emulator.chaos is not None:  # a previous test's kf2v.chaos()
        handle.admin("DELETE", "/_mock/chaos")
    yield handle
    if _report_wanted(request.config) or chaos is not None:
        try:
            card = handle.report()
            text = card.text() if card.findings or card.data.get("chaos") else ""
        except Exception as exc:  # never fail the test for its card; say why it is missing
            text = f"no report card: {exc}"
        request.node.user_properties.append((_ReportCards.PROPERTY, text))


@pytest.fixture
def kf2v_region() -> str:
    """The region ``dashscope_env`` points at; ``@pytest.mark.parametrize("kf2v_region", [...])``."""
    return BEIJING


@dataclasses.dataclass(frozen=True)
class DashScopeEnv:
    region: str
    base_url: str
    api_key: str


@pytest.fixture
def dashscope_env(kf2v: Kf2v, kf2v_region: str, monkeypatch: pytest.MonkeyPatch) -> DashScopeEnv:
    """Point unmodified client code at the emulator: the SDK's environment variables (1.x and
    the 2.0 client), ``dashscope.base_http_api_url`` / ``dashscope.api_key`` and NO_PROXY for
    loopback. Everything is restored after the test."""
    env = DashScopeEnv(kf2v_region, kf2v.base_url(kf2v_region), kf2v.api_key(kf2v_region))
    # Import the SDK (if installed) before touching the environment: 1.x reads it at import, and
    # an import during the test would otherwise keep the emulator's URL after the test.
    if "dashscope" not in sys.modules and importlib.util.find_spec("dashscope") is not None:
        import dashscope  # noqa: F401
    for name in ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL"):
        monkeypatch.setenv(name, env.base_url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", env.api_key)
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        monkeypatch.setenv(name, f"{current},{_LOOPBACK_HOSTS}" if current else _LOOPBACK_HOSTS)
    sdk = sys.modules.get("dashscope")
    if sdk is not None:
        monkeypatch.setattr(sdk, "base_http_api_url", env.base_url)
        monkeypatch.setattr(sdk, "api_key", env.api_key)
    return env


@pytest.fixture
def kf2v_frames(tmp_path) -> "FrameFactory":
    """Seeded sample frames: ``kf2v_frames.pair(seed=1, size=(750, 1000), fmt="JPEG")`` and
    ``kf2v_frames.files(...)`` (written under the test's tmp_path), ``kf2v_frames.bad(name)``."""
    from .samples.frames import FrameFactory
    return FrameFactory(tmp_path)


# --- the intercepting proxy (README, "Clients you cannot change") ----------------------------------
PRODUCTION_URLS = {BEIJING: "https://dashscope.aliyuncs.com/api/v1",
                   SINGAPORE: "https://dashscope-intl.aliyuncs.com/api/v1"}


@dataclasses.dataclass(frozen=True)
class Intercept:
    region: str
    base_url: str  # the production URL the SDK is left with
    api_key: str
    proxy_url: str  # what HTTPS_PROXY / HTTP_PROXY are set to
    ca_file: str  # the local CA (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, ...)


@pytest.fixture
def kf2v_intercept(kf2v: Kf2v, kf2v_region: str, monkeypatch: pytest.MonkeyPatch) -> Intercept:
    """Code that calls the production hostnames (``https://dashscope.aliyuncs.com``,
    ``dashscope-intl``, the OSS links in the answers) reaches the emulator unchanged, as under
    ``kf2v-mock run --intercept``: HTTPS_PROXY/HTTP_PROXY point at the intercepting proxy (NO_PROXY
    keeps loopback direct), the CA variables at its CA, DASHSCOPE_API_KEY (and ``dashscope.api_key``)
    at ``kf2v_region``'s key; the SDK's base URL variables are removed and
    ``dashscope.base_http_api_url`` is that region's production URL. Restored after the test."""
    from pathlib import Path

    from ..proxy.authority import CertificateAuthority
    from ..proxy.clients import intercept_environment

    proxy_url, ca_file = kf2v.server.start_proxy()
    authority = CertificateAuthority.open(Path(ca_file).parent)
    intercept = Intercept(kf2v_region, PRODUCTION_URLS[kf2v_region], kf2v.api_key(kf2v_region),
                          proxy_url, ca_file)
    if "dashscope" not in sys.modules and importlib.util.find_spec("dashscope") is not None:
        import dashscope  # noqa: F401  (1.x reads its environment at import: import it first)
    env = intercept_environment(dict(os.environ), proxy_url, authority)
    env["DASHSCOPE_API_KEY"] = intercept.api_key
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    for name in ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    sdk = sys.modules.get("dashscope")
    if sdk is not None:
        monkeypatch.setattr(sdk, "base_http_api_url", intercept.base_url)
        monkeypatch.setattr(sdk, "api_key", intercept.api_key)
    return intercept
