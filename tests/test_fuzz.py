"""Property-based fuzzing of every operation in contract/openapi.yaml (schemathesis) against the
emulator on real sockets: valid, schema-invalid and unauthenticated requests alike must never get a
5xx or hang, every /api/v1 4xx must be DashScope's ``{request_id, code, message}`` and every OSS 4xx
OSS's XML error, and every answer must be one the contract allows.

Short by default (CI); ``KF2V_FUZZ_EXAMPLES=2000`` runs the long version (README, "Fuzzing").
Deterministic: schemathesis derandomizes with a seed per operation and keeps no example database.
Offline: ``network_guard`` refuses every name lookup and connection that is not loopback, so image
URLs the fuzzer invents fail like unreachable hosts instead of leaving the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import zlib
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                               missing_required_header, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from contract.schema import CONTRACT_PATH, load_contract
from fixtures.frames import frame_data_url
from mock_server.config import Settings
from mock_server.tasks.regions import BEIJING, REGIONS
from mock_server.testing.embedded import EmbeddedServer
from tests import contract_check
from tests.conftest import BJ_KEY, UUID

EXAMPLES = int(os.environ.get("KF2V_FUZZ_EXAMPLES", "25"))
TIMEOUT = 15.0  # seconds per request: an answer slower than this is a hang
T0 = datetime(2026, 11, 25, 2, 0, 0, tzinfo=timezone.utc)
BJ = REGIONS[BEIJING]


def _config(examples: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "generation": {"mode": "all", "max-examples": examples, "deterministic": True,
                       "database": "none"},
        # Examples: the contract's documented requests; coverage: boundary and type-confusion
        # cases; fuzzing: random valid and invalid requests. No links, so nothing stateful.
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "request-timeout": TIMEOUT,
        # The OSS buckets are a host name on the real service; the emulator serves them
        # path-style, so the fuzzer gets the real bucket names and fuzzes everything else.
        "parameters": {"path.upload_bucket": BJ.upload_bucket,
                       "path.result_bucket": BJ.result_bucket},
    })


SCHEMA = schemathesis.openapi.from_path(CONTRACT_PATH, config=_config(EXAMPLES))

# Beyond "no 5xx" and conformance: requests without the key must get 401 (ignored_auth re-sends
# them so), without a required header a 4xx, and requests the contract forbids a 4xx too.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, missing_required_header, ignored_auth,
          negative_data_rejection]


# --- offline guard -------------------------------------------------------------------------------
def _is_loopback(host) -> bool:
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses (and records) every name lookup and connection that is not loopback, in every thread
    of this process: the fuzzer's client and the emulator's image fetcher alike."""

    def __init__(self):
        self.lookups: list[str] = []
        self.connects: list[str] = []
        self._getaddrinfo = socket.getaddrinfo
        self._connect = socket.socket.connect

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard = self

        def getaddrinfo(host, *args, **kwargs):
            if host is not None and not _is_loopback(host):
                guard.lookups.append(str(host))
                raise socket.gaierror(socket.EAI_NONAME, "kf2v fuzz: offline")
            return guard._getaddrinfo(host, *args, **kwargs)

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
                guard.connects.append(str(address[0]))
                raise ConnectionRefusedError("kf2v fuzz: offline")
            return guard._connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def network_guard():
    guard = NetworkGuard()
    with pytest.MonkeyPatch.context() as monkeypatch:
        guard.install(monkeypatch)
        yield guard


# --- the emulator under fuzz ---------------------------------------------------------------------
def fuzz_settings(data_dir, **overrides) -> Settings:
    values = dict(beijing_port=0, singapore_port=0, render_preset="ultrafast", log_requests=False,
                  data_dir=data_dir, seed=0, clock_start=T0, clock_frozen=True,
                  # Quotas off, or the fuzzer would mostly meet 429s (test_fuzz_quotas has them on);
                  # scenarios off: an invented X-Mock-Scenario header must not inject a 5xx.
                  quotas=False, scenarios=False,
                  # Image URLs fail fast: every host but loopback is refused by network_guard.
                  # The documented sample URLs too (no built-in stand-ins): otherwise every example
                  # built on the documented body would render a clip, 1080P ones included.
                  download_timeout=2.0, doc_sample_urls=False)
    values.update(overrides)
    return Settings(**values)


class Seeded:
    """Real tasks and links in the fuzzed account, so fuzzed requests can meet real state."""

    def __init__(self, server: EmbeddedServer):
        self.url = server.root_url(BEIJING)
        headers = {"Authorization": f"Bearer {BJ_KEY}", "X-DashScope-Async": "enable"}
        body = {"model": "wan2.2-kf2v-flash",
                "input": {"first_frame_url": frame_data_url(320, 240, seed=1),
                          "last_frame_url": frame_data_url(320, 240, seed=2), "prompt": "fuzz"},
                "parameters": {"resolution": "480P"}}
        create = f"{self.url}/api/v1/services/aigc/image2video/video-synthesis"
        done = requests.post(create, json=body, headers=headers, timeout=TIMEOUT).json()
        server.advance(3600)
        server.drain()
        self.task_ids = [done["output"]["task_id"]]
        for _ in range(2):  # left PENDING: cancellable
            answer = requests.post(create, json=body, headers=headers, timeout=TIMEOUT).json()
            self.task_ids.append(answer["output"]["task_id"])
        query = requests.get(f"{self.url}/api/v1/tasks/{self.task_ids[0]}", headers=headers,
                             timeout=TIMEOUT).json()
        assert query["output"]["task_status"] == "SUCCEEDED", query
        self.video_url = urlsplit(query["output"]["video_url"])


@pytest.fixture(scope="module")
def fuzz_server(network_guard, tmp_path_factory):
    settings = fuzz_settings(tmp_path_factory.mktemp("fuzz"))
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        server.seeded = Seeded(server)
        yield server


# --- what every answer must be -------------------------------------------------------------------
def header(response, name: str) -> str:
    values = response.headers.get(name.lower()) or [""]  # schemathesis: lower-cased name -> list
    return values[0]


def assert_answer_shape(case, response) -> None:
    """No 5xx; a DashScope error envelope for every /api/v1 4xx; OSS XML for every OSS 4xx."""
    status = response.status_code
    where = f"{case.method} {response.request.url} -> {status}: {response.content[:300]!r}"
    assert status < 500, where
    if status < 400:
        return
    if response.request.path_url.startswith("/api/v1/"):
        assert header(response, "Content-Type").startswith("application/json"), where
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"request_id", "code", "message"}, where
        assert UUID.match(body["request_id"]), where
        assert load_contract().schema_errors("Error", body) == [], where
    elif case.method != "HEAD":
        assert header(response, "Content-Type").startswith("application/xml"), where
        assert load_contract().xml_errors(status, response.text) == [], where
        document = ElementTree.fromstring(response.text)
        assert document.tag == "Error", where
        assert header(response, "x-oss-ec") == document.findtext("EC", ""), where
        assert header(response, "x-oss-request-id") == document.findtext("RequestId"), where


def _pick(case, n: int) -> int:
    """A deterministic choice in range(n) derived from the case (hypothesis already varies it)."""
    return zlib.crc32(repr(sorted((case.path_parameters or {}).items())).encode()
                      + repr(sorted((case.query or {}).items())).encode()) % n


def with_real_state(case, seeded: Seeded) -> None:
    """Point some fuzzed requests at real tasks and a real signed link, so the fuzzed remainder
    (Range header, filters...) reaches the code behind the id and signature checks."""
    label = case.operation.label
    if label in ("GET /api/v1/tasks/{task_id}", "POST /api/v1/tasks/{task_id}/cancel"):
        choice = _pick(case, len(seeded.task_ids) + 1)
        if choice < len(seeded.task_ids):
            case.path_parameters["task_id"] = seeded.task_ids[choice]
    elif label in ("GET /{result_bucket}/{key}", "HEAD /{result_bucket}/{key}") and _pick(case, 2):
        link = seeded.video_url
        case.path_parameters["key"] = link.path.split("/", 2)[2]
        query = dict(parse_qsl(link.query))
        case.query = {**(case.query or {}), **query}


@SCHEMA.parametrize()
@pytest.mark.parametrize("access", ["key", "as-generated"])
def test_fuzz(case, access, fuzz_server, network_guard):
    headers = None
    if access == "key":
        with_real_state(case, fuzz_server.seeded)
        headers = {"Authorization": f"Bearer {BJ_KEY}"}
    response = case.call(base_url=fuzz_server.root_url(BEIJING), headers=headers, timeout=TIMEOUT)
    assert_answer_shape(case, response)
    checks = CHECKS
    if any(isinstance(value, list) for value in (case.query or {}).values()):
        # A query parameter sent twice counts with its first value (docs/assumptions.md, "Empty
        # and repeated list parameters"): not refused, whatever the later values.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    case.validate_response(response, checks=checks, headers=headers)
    assert network_guard.connects == [], "a fuzzed request made the emulator connect off loopback"


# --- with the rate quotas on: every 429 is a DashScope error too --------------------------------
QUOTA_SCHEMA = schemathesis.openapi.from_path(
    CONTRACT_PATH, config=_config(max(5, EXAMPLES // 5))).include(path_regex="^/api/v1/")


@pytest.fixture(scope="module")
def quota_server(network_guard, tmp_path_factory):
    # Quotas on and the clock frozen: the one-second windows never refill, so after the first
    # few requests of each kind the fuzzer meets mostly 429s.
    settings = fuzz_settings(tmp_path_factory.mktemp("fuzz-quotas"), quotas=True)
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        yield server


def assert_throttled_shape(response) -> None:
    if response.status_code == 429:
        assert header(response, "Retry-After").isdigit(), response.headers


@QUOTA_SCHEMA.parametrize()
def test_fuzz_with_quotas(case, quota_server):
    headers = {"Authorization": f"Bearer {BJ_KEY}"}
    response = case.call(base_url=quota_server.root_url(BEIJING), headers=headers, timeout=TIMEOUT)
    assert_answer_shape(case, response)
    assert_throttled_shape(response)
    case.validate_response(response, headers=headers, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance])


@pytest.mark.parametrize("method, path, burst", [
    ("POST", "/api/v1/services/aigc/image2video/video-synthesis", 3),
    ("GET", "/api/v1/tasks/none", 21),
    ("GET", "/api/v1/uploads?action=getPolicy&model=wan2.2-kf2v-flash", 101),
])
def test_quota_429s_are_dashscope_errors(quota_server, method, path, burst):
    """Whatever the fuzzer above happened to draw, each throttled endpoint does answer 429 here."""
    headers = {"Authorization": f"Bearer {BJ_KEY}", "X-DashScope-Async": "enable"}
    url = quota_server.root_url(BEIJING) + path
    with requests.Session() as session:
        # Submit quotas are per model: the body names one (and is otherwise invalid).
        answers = [session.request(method, url, headers=headers, timeout=TIMEOUT,
                                   json={"model": "wan2.2-kf2v-flash"})
                   for _ in range(burst)]
    last = answers[-1]
    assert last.status_code == 429, last.text
    body = last.json()
    assert set(body) == {"request_id", "code", "message"} and UUID.match(body["request_id"])
    assert body["code"].startswith("Throttling"), body
    assert last.headers["Retry-After"].isdigit()
    assert load_contract().json_errors(method, path.split("?")[0], 429, body) == []


# --- the emulator's own admin API (not in the contract): arbitrary JSON, no 5xx ------------------
def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    _containers, max_leaves=12)
FAULT_FIELDS = ("error", "task_failure", "delay", "disconnect", "truncate", "expire_url", "match",
                "probability", "times", "id")
ACTION_FIELDS = ("status", "code", "name", "message", "ms", "uniform", "lognormal", "bytes", "at",
                 "region", "endpoint", "prompt_regex", "model", "task_id", "api_key")
ACTION = JSON | st.fixed_dictionaries({}, optional={k: JSON for k in ACTION_FIELDS})
FAULT = JSON | st.fixed_dictionaries({}, optional={k: ACTION for k in FAULT_FIELDS})
CLOCK = JSON | st.fixed_dictionaries({}, optional={
    "advance_seconds": JSON | st.floats(min_value=0), "set": JSON | st.datetimes().map(str),
    "frozen": JSON})


@pytest.fixture(scope="module")
def admin_server(network_guard, tmp_path_factory):
    # Its own emulator: the rules and clock moves posted here must not leak into test_fuzz.
    settings = fuzz_settings(tmp_path_factory.mktemp("fuzz-admin"))
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        yield server


def assert_mock_answer(response: requests.Response) -> None:
    where = f"{response.request.method} {response.request.url} -> {response.status_code}: " \
            f"{response.content[:300]!r}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"request_id", "code", "message"} and UUID.match(body["request_id"]), \
            where


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(body=st.one_of(FAULT.map(json.dumps), st.binary(max_size=40)))
def test_fuzz_admin_faults(admin_server, body):
    url = f"{admin_server.root_url(BEIJING)}/_mock/faults"
    response = requests.post(url, data=body, timeout=TIMEOUT)
    assert_mock_answer(response)
    requests.delete(url, timeout=TIMEOUT).raise_for_status()


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(body=st.one_of(CLOCK.map(json.dumps), st.binary(max_size=40)))
def test_fuzz_admin_clock(admin_server, body):
    root = admin_server.root_url(BEIJING)
    assert_mock_answer(requests.post(f"{root}/_mock/clock", data=body, timeout=TIMEOUT))
    # Whatever the clock was told, the API still answers.
    answer = requests.get(f"{root}/api/v1/tasks/none", timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {BJ_KEY}"})
    assert answer.status_code == 200, answer.text
