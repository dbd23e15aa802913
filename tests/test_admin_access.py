"""The admin API (/_mock/) answers loopback peers only, unless an admin token is configured and
sent in X-Mock-Admin-Token. A refused admin call is a DashScope-shaped 403 and changes nothing;
the DashScope API itself is open to any peer (it has its own keys)."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession, web

from mock_server.admin.access import TOKEN_HEADER, admin_allowed, is_loopback_peer
from mock_server.app import create_app, start_server
from mock_server.pipeline.keys import EMULATOR
from tests.conftest import assert_error, auth, create
from tests.conftest import test_settings as settings_for
from tests.netutil import local_non_loopback_address

ADMIN_CALLS = [("GET", "/_mock/health", None), ("GET", "/_mock/clock", None),
               ("POST", "/_mock/clock", {"advance_seconds": 3600}), ("POST", "/_mock/reset", None),
               ("GET", "/_mock/tasks", None), ("GET", "/_mock/anything-added-later", None)]


# --- the peer check ------------------------------------------------------------------------------
@pytest.mark.parametrize("remote, loopback", [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.2", False), ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("fe80::1%eth0", False),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("localhost", False),
    ("not an address", False),
])
def test_loopback_peer(remote, loopback):
    assert is_loopback_peer(remote) is loopback


def test_token_rules():
    assert admin_allowed("127.0.0.1", None, None)
    assert admin_allowed("127.0.0.1", "wrong", "secret")  # loopback needs no token
    assert not admin_allowed("192.0.2.2", None, None)
    assert not admin_allowed("192.0.2.2", "secret", None)  # no token configured: loopback only
    assert not admin_allowed("192.0.2.2", None, "secret")
    assert not admin_allowed("192.0.2.2", "", "secret")
    assert not admin_allowed("192.0.2.2", "secre", "secret")
    assert not admin_allowed("192.0.2.2", "secret ", "secret")
    assert admin_allowed("192.0.2.2", "secret", "secret")


# --- through the app, with the peer address rewritten before the middlewares see it ------------
PEER_HEADER = "X-Test-Peer"


@web.middleware
async def fake_peer(request, handler):
    """Test-only: make the request look as if it came from ``X-Test-Peer`` (like a socket from
    that address would). Production code never reads this header."""
    peer = request.headers.get(PEER_HEADER)
    return await handler(request.clone(remote=peer) if peer else request)


@pytest.fixture
def peer_client(aiohttp_client, tmp_path):
    async def make(**overrides):
        app = create_app(settings_for(tmp_path, **overrides))
        app.middlewares.insert(0, fake_peer)
        client = await aiohttp_client(app)
        client.emulator = app[EMULATOR]
        return client
    return make


async def call(client, method, path, body=None, **headers):
    response = await client.request(method, path, json=body, headers=headers)
    return response.status, await response.json()


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
async def test_non_loopback_peer_is_refused_without_a_token(peer_client, method, path, body):
    client = await peer_client()
    status, answer = await call(client, method, path, body, **{PEER_HEADER: "192.0.2.50"})
    assert_error(status, answer, 403, "AccessDenied", "Access denied.")
    # The same call from loopback is answered (or is a 404 for the made-up path).
    status, _ = await call(client, method, path, body)
    assert status in (200, 404)


async def test_refused_admin_calls_change_nothing(peer_client):
    client = await peer_client()
    status, created = await create(client)
    assert status == 200
    before = client.emulator.clock.now()
    for method, path, body in ADMIN_CALLS:
        await call(client, method, path, body, **{PEER_HEADER: "203.0.113.9"})
    assert client.emulator.clock.now() == before
    assert client.emulator.store.get_task(created["output"]["task_id"]) is not None


@pytest.mark.parametrize("path", ["/%5Fmock/reset", "/_mock%2Freset", "/_mock//reset",
                                  "/api/v1/../../_mock/reset", "/_mock/./reset", "/_MOCK/reset"])
async def test_spellings_of_admin_paths_do_not_slip_through(peer_client, path):
    from yarl import URL
    client = await peer_client()
    await create(client)
    response = await client.post(URL(path, encoded=True), headers={PEER_HEADER: "192.0.2.50"})
    assert response.status in (403, 404, 405)
    assert len(client.emulator.store.tasks()) == 1


async def test_with_a_token_non_loopback_peers_must_send_it(peer_client):
    client = await peer_client(admin_token="s3cret-token")
    remote = {PEER_HEADER: "192.0.2.50"}
    status, answer = await call(client, "GET", "/_mock/health", **remote)
    assert_error(status, answer, 403, "AccessDenied", "Access denied.")
    status, answer = await call(client, "GET", "/_mock/health", **remote, **{TOKEN_HEADER: "nope"})
    assert_error(status, answer, 403, "AccessDenied", "Access denied.")
    status, answer = await call(client, "POST", "/_mock/clock", {"advance_seconds": 60},
                                **remote, **{TOKEN_HEADER: "s3cret-token"})
    assert status == 200 and answer["frozen"] is True
    status, _ = await call(client, "GET", "/_mock/health")  # loopback still needs none
    assert status == 200


async def test_the_dashscope_api_is_open_to_any_peer(peer_client):
    client = await peer_client()
    response = await client.get("/api/v1/tasks", headers=auth(**{PEER_HEADER: "192.0.2.50"}))
    assert response.status == 200


# --- end to end on real sockets from this machine's non-loopback address ------------------------
@pytest.fixture
async def lan_server(tmp_path):
    address = local_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    servers = []

    async def start(**overrides):
        settings = settings_for(tmp_path, host=address, beijing_port=0, singapore_port=0,
                                 **overrides)
        app = create_app(settings)
        runner = await start_server(app, settings)
        servers.append(runner)
        port = next(iter(app[EMULATOR].listener_regions))
        return f"http://{address}:{port}"
    yield start
    for runner in servers:
        await runner.cleanup()


async def test_a_real_non_loopback_connection_is_refused_then_let_in_by_token(lan_server):
    base = await lan_server(admin_token="tok")
    async with ClientSession() as session:
        async with session.post(f"{base}/_mock/reset") as response:
            assert_error(response.status, await response.json(), 403, "AccessDenied",
                         "Access denied.")
        async with session.get(f"{base}/_mock/health", headers={TOKEN_HEADER: "tok"}) as response:
            assert response.status == 200
        async with session.get(f"{base}/api/v1/tasks", headers=auth()) as response:
            assert response.status == 200


# --- configuration -------------------------------------------------------------------------------
def test_flags_and_environment(monkeypatch):
    from mock_server.cli import build_parser, settings_from_args

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["serve", *argv]))
    default = settings()
    assert (default.admin_token, default.allow_private_image_urls,
            default.allow_loopback_image_urls) == (None, False, True)
    flagged = settings("--admin-token", "t1", "--allow-private-image-urls",
                       "--deny-loopback-image-urls")
    assert (flagged.admin_token, flagged.allow_private_image_urls,
            flagged.allow_loopback_image_urls) == ("t1", True, False)
    monkeypatch.setenv("KF2V_MOCK_ADMIN_TOKEN", "t2")
    monkeypatch.setenv("KF2V_MOCK_DENY_LOOPBACK_IMAGE_URLS", "1")
    from_env = settings()
    assert (from_env.admin_token, from_env.allow_loopback_image_urls) == ("t2", False)
