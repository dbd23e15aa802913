"""Shared fixtures: an in-process app on a frozen clock, and a live two-listener server for the SDK."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import pytest
from dashscope.api_entities.aio_session import close_shared_aio_session
from hypothesis import settings as hypothesis_settings

from fixtures.frames import frame_data_url
from mock_server import logs
from mock_server.app import create_app
from mock_server.config import Settings
from mock_server.pipeline import log_lines
from mock_server.pipeline.keys import EMULATOR
from mock_server.tasks.errors import CATALOGUE
from mock_server.testing.embedded import EmbeddedServer
from tests import contract_check

# Property tests draw the same examples on every run (the suite is deterministic).
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.load_profile("deterministic")


def pytest_runtest_setup(item):
    contract_check.take_violations()  # forget what earlier tests' leftovers caused


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test whose requests got an answer contract/openapi.yaml does not allow."""
    result = yield
    violations = contract_check.take_violations()
    if violations:
        raise AssertionError("answers outside contract/openapi.yaml:\n  " + "\n  ".join(violations))
    return result


T = TypeVar("T")


def missing_component(why: str, fix: str) -> NoReturn:
    """A test that needs a real component (a browser, a tool) must run in CI: there its absence
    fails the test; elsewhere the test is skipped with what to do."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}: this test must run in CI ({fix})", pytrace=False)
    pytest.skip(f"{why}: {fix}")


def run_sdk_aio(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(make())``, then close the aiohttp session the dashscope SDK keeps for that
    loop (``close_shared_aio_session``, as a careful user of its asyncio API does): left open, it
    is reported as unclosed once the loop is gone."""
    async def main() -> T:
        try:
            return await make()
        finally:
            await close_shared_aio_session()
    return asyncio.run(main())


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """A test that runs the CLI in-process (``main(["serve"])``) installs ``logs.setup``'s handler on
    the root logger, bound to the stderr pytest captured for that test: take it off again, so that
    later records (aiohttp's warnings at exit among them) never reach a closed stream."""
    root = logging.getLogger()
    level = root.level
    chatty = {name: logging.getLogger(name).level for name in logs.CHATTY}
    yield
    for handler in list(root.handlers):
        if isinstance(handler, logs.LoopBatchedHandler):
            root.removeHandler(handler)
    root.setLevel(level)
    for name, chatty_level in chatty.items():
        logging.getLogger(name).setLevel(chatty_level)
    log_lines.write_directly_to(None, None)


BJ_KEY = "sk-kf2v-mock-beijing"
SG_KEY = "sk-kf2v-mock-singapore"
SG_HOST = "dashscope-intl.aliyuncs.com"
T0 = datetime(2026, 11, 25, 2, 0, 0, tzinfo=timezone.utc)


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # Quotas off: these tests create many tasks at one frozen instant, which the real service's
    # 2-per-second submit rate would throttle; tests/test_quotas.py turns them on.
    values = dict(clock_start=T0, clock_frozen=True, render_preset="ultrafast", log_requests=False,
                  data_dir=tmp_path / "data", seed=0, render_workers=2, quotas=False)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    """``await make_client(**settings)`` -> aiohttp test client on a frozen clock at ``T0``."""
    made = itertools.count()

    async def make(**overrides):
        # Each emulator gets a data dir of its own (one process per data dir, as in production).
        overrides.setdefault("data_dir", tmp_path / f"data{next(made)}")
        app = contract_check.install(create_app(test_settings(tmp_path, **overrides)))
        client = await aiohttp_client(app)
        client.emulator = app[EMULATOR]
        return client
    return make


@pytest.fixture
async def client(make_client):
    return await make_client()


def auth(key: str = BJ_KEY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def create_headers(key: str = BJ_KEY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable",
            "Content-Type": "application/json", **extra}


def kf2v_body(model: str = "wan2.2-kf2v-flash", resolution: str = "480P", **input_extra: Any) -> dict:
    return {"model": model,
            "input": {"prompt": "a cat turns into a dog",
                      "first_frame_url": frame_data_url(320, 240, seed=1),
                      "last_frame_url": frame_data_url(320, 240, seed=2), **input_extra},
            "parameters": {"resolution": resolution}}


CREATE = "/api/v1/services/aigc/image2video/video-synthesis"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def create(client, body: dict | None = None, headers: dict | None = None, *,
                 key: str = BJ_KEY, path: str = CREATE, **extra_headers: str) -> tuple[int, dict]:
    """POST a create (default body and headers unless given) -> (status, JSON answer)."""
    headers = headers if headers is not None else create_headers(key, **extra_headers)
    response = await client.post(path, json=body or kf2v_body(), headers=headers)
    return response.status, await response.json()


async def query(client, task_id: str, key: str = BJ_KEY, suffix: str = "", **headers: str) -> dict:
    response = await client.get(f"/api/v1/tasks/{task_id}{suffix}", headers=auth(key, **headers))
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()


def assert_error(status: int, body: dict, expected_status: int, code: str, message: str) -> None:
    """A DashScope error envelope, exactly."""
    assert status == expected_status, body
    assert set(body) == {"request_id", "code", "message"}
    assert UUID.match(body["request_id"])
    assert (body["code"], body["message"]) == (code, message)


def assert_catalogue_error(status: int, body: dict, name: str) -> None:
    spec = CATALOGUE[name]
    assert_error(status, body, spec.status, spec.code, spec.message)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The emulator on real sockets (a background thread) for clients that block (the SDK)."""
    settings = Settings(beijing_port=0, singapore_port=0, render_preset="ultrafast",
                        log_requests=False, data_dir=tmp_path_factory.mktemp("live"),
                        api_keys=[])
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        yield server
