"""Image URLs are fetched under scheme and address rules (mock_server/media/fetch.py): no
metadata, link-local or other non-unicast addresses ever; private ranges only when allowed; loopback
unless denied; every resolved address checked and the connection pinned to it; every redirect hop
checked again. A refused URL answers like an undownloadable image and never reaches its host."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from aiohttp import web
from yarl import URL

from fixtures.frames import frame_bytes
from mock_server.api.image_fetch import MAX_REDIRECTS, UrlRules
from tests.conftest import create
from tests.netutil import FakeDns, local_non_loopback_address
from tests.test_intake import body_with, refused


class Host:
    """An image server that records every request it gets (path and Host header)."""

    def __init__(self):
        self.hits: list[tuple[str, str]] = []
        self.app = web.Application()
        self.app.router.add_get("/ok.png", self.ok)
        self.app.router.add_get("/redirect", self.redirect)
        self.app.router.add_get("/chain/{n}", self.chain)
        self.app.router.add_get("/slow-chain/{n}", self.slow_chain)

    async def ok(self, request):
        self.hits.append((request.path, request.host))
        return web.Response(body=frame_bytes(300, 300, seed=40), content_type="image/png")

    async def redirect(self, request):
        self.hits.append((request.path, request.host))
        raise web.HTTPFound(request.query["to"])

    async def chain(self, request):
        """``/chain/N`` redirects N more times, then to ``/ok.png``."""
        self.hits.append((request.path, request.host))
        n = int(request.match_info["n"])
        raise web.HTTPFound("/ok.png" if n == 0 else f"/chain/{n - 1}")

    async def slow_chain(self, request):
        """Like ``/chain/N``, each hop answering after 0.15 s."""
        self.hits.append((request.path, request.host))
        await asyncio.sleep(0.15)
        n = int(request.match_info["n"])
        raise web.HTTPFound("/ok.png" if n == 0 else f"/slow-chain/{n - 1}")

    def paths(self) -> list[str]:
        return [path for path, _ in self.hits]


@pytest.fixture
async def host(aiohttp_server):
    h = Host()
    server = await aiohttp_server(h.app)
    h.port = server.port
    h.url = lambda path, name="127.0.0.1": f"http://{name}:{server.port}{path}"
    return h


@pytest.fixture
def connects(monkeypatch) -> list[str]:
    """Every address a socket of this process tries to connect to (asyncio's sock_connect calls
    ``socket.connect``), recorded before the real call."""
    seen: list[str] = []
    real = socket.socket.connect

    def connect(self, address):
        seen.append(str(address[0]) if isinstance(address, tuple) else str(address))
        return real(self, address)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


# --- the rules themselves ------------------------------------------------------------------------
ALWAYS_REFUSED = ["169.254.169.254", "169.254.170.2", "169.254.1.1", "100.100.100.200",
                  "fd00:ec2::254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1",
                  "255.255.255.255", "240.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]
PRIVATE = ["10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1",
           "100.64.0.1", "100.127.255.254", "fc00::1", "fd12:3456::1", "::ffff:10.0.0.1",
           "192.0.2.2", "198.18.0.1"]
LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
PUBLIC = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"]


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_address_classes(allow_private, allow_loopback):
    rules = UrlRules(allow_private=allow_private, allow_loopback=allow_loopback)
    for address in ALWAYS_REFUSED:
        assert rules.refusal(ipaddress.ip_address(address)) is not None, address
    for address in PRIVATE:
        assert (rules.refusal(ipaddress.ip_address(address)) is None) == allow_private, address
    for address in LOOPBACK:
        assert (rules.refusal(ipaddress.ip_address(address)) is None) == allow_loopback, address
    for address in PUBLIC:
        assert rules.refusal(ipaddress.ip_address(address)) is None, address


def test_defaults_allow_loopback_and_refuse_private():
    rules = UrlRules()
    assert rules.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert rules.refusal(ipaddress.ip_address("10.0.0.1")) == "a private address"


# --- through the create endpoint ---------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/a.png",
    "http://[::ffff:169.254.169.254]/a.png",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/a.png",
    "http://192.168.0.1/a.png",
    "http://172.16.0.1/a.png",
    "http://100.64.0.1/a.png",
    "http://[fc00::1]/a.png",
])
async def test_forbidden_literal_addresses_are_refused_without_connecting(make_client, connects,
                                                                         url):
    client = await make_client(download_timeout=10)
    await refused(client, body_with(url), "media_download_failed")
    host = URL(url).host
    assert [a for a in connects if a == host or a.endswith(host)] == []
    assert all(ipaddress.ip_address(a).is_loopback for a in connects)  # only the test client's


@pytest.mark.parametrize("spelling", ["0.0.0.0", "[::]"])
async def test_unspecified_addresses_never_reach_the_local_host(client, host, spelling):
    # Connecting to 0.0.0.0 or :: reaches this machine on Linux, whatever the loopback rule says.
    await refused(client, body_with(host.url("/ok.png", spelling)), "media_download_failed")
    assert host.hits == []


@pytest.mark.parametrize("spelling", ["2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1",
                                      "127.0.0.1.", "LOCALHOST", "[::ffff:7f00:1]"])
async def test_other_spellings_of_loopback_are_loopback(make_client, host, spelling):
    client = await make_client(allow_loopback_image_urls=False)
    await refused(client, body_with(host.url("/ok.png", spelling)), "media_download_failed")
    assert host.hits == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/a.png",
                                 "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/stat",
                                 "jar:http://127.0.0.1/a!/b", "//127.0.0.1/a.png"])
async def test_only_http_and_https_schemes(client, url):
    await refused(client, body_with(url), "invalid_url")


async def test_loopback_is_allowed_by_default_and_can_be_denied(make_client, host, monkeypatch):
    FakeDns(monkeypatch, {"fixtures.test": ["127.0.0.1"]})
    client = await make_client()
    status, answer = await create(client, body_with(host.url("/ok.png")))
    assert status == 200, answer
    denied = await make_client(allow_loopback_image_urls=False)
    for name in ("127.0.0.1", "localhost", "fixtures.test", "[::ffff:127.0.0.1]"):
        before = len(host.hits)
        await refused(denied, body_with(host.url("/ok.png", name)), "media_download_failed")
        assert len(host.hits) == before, name


async def test_a_name_is_refused_if_any_of_its_addresses_is(client, host, monkeypatch,
                                                             connects):
    dns = FakeDns(monkeypatch, {"mixed.test": ["127.0.0.1", "169.254.169.254"],
                                "lan.test": ["10.1.2.3"],
                                "meta.test": ["fd00:ec2::254"]})
    for name in ("mixed.test", "lan.test", "meta.test"):
        await refused(client, body_with(host.url("/ok.png", name)), "media_download_failed")
    assert host.hits == []
    assert sorted(set(dns.lookups)) == ["lan.test", "meta.test", "mixed.test"]
    assert not {"10.1.2.3", "169.254.169.254", "fd00:ec2::254"} & set(connects)


async def test_the_connection_goes_to_the_address_that_was_checked(client, host, monkeypatch):
    # DNS rebinding: the first answer is allowed, any later one is the metadata service. A second
    # lookup between check and connect would send the request there (and fail).
    dns = FakeDns(monkeypatch, {"rebind.test": [["127.0.0.1"], ["169.254.169.254"]]})
    status, answer = await create(client, body_with(host.url("/ok.png", "rebind.test")))
    assert status == 200, answer
    assert host.hits == [("/ok.png", f"rebind.test:{host.port}")]
    assert dns.lookups == ["rebind.test"]


# --- redirects ---------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://lan.test/a.png",
    "file:///etc/passwd",
    "ftp://127.0.0.1/a.png",
])
async def test_every_redirect_hop_is_checked(client, host, monkeypatch, connects, target):
    FakeDns(monkeypatch, {"lan.test": ["192.168.7.7"]})
    url = host.url("/redirect") + "?to=" + target
    await refused(client, body_with(url), "media_download_failed")
    assert host.paths() == ["/redirect"]
    assert all(ipaddress.ip_address(a).is_loopback for a in connects)


async def test_redirects_are_followed_up_to_the_limit(make_client, host):
    client = await make_client()
    status, answer = await create(client, body_with(host.url(f"/chain/{MAX_REDIRECTS - 1}")))
    assert status == 200, answer
    assert host.paths()[-1] == "/ok.png" and len(host.hits) == MAX_REDIRECTS + 1
    host.hits.clear()
    await refused(await make_client(), body_with(host.url(f"/chain/{MAX_REDIRECTS}")), "media_download_failed")
    assert "/ok.png" not in host.paths() and len(host.hits) == MAX_REDIRECTS + 1


# --- private ranges, end to end on this machine's own non-loopback address ----------------------
@pytest.fixture
async def lan_host():
    address = local_non_loopback_address()
    if address is None or ipaddress.ip_address(address).is_global:
        pytest.skip("no private (non-global) non-loopback address on this machine")
    h = Host()
    runner = web.AppRunner(h.app)
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    h.url = lambda path: f"http://{address}:{port}{path}"
    yield h
    await runner.cleanup()


async def test_private_addresses_only_when_allowed(make_client, lan_host):
    client = await make_client()
    await refused(client, body_with(lan_host.url("/ok.png")), "media_download_failed")
    assert lan_host.hits == []
    allowed = await make_client(allow_private_image_urls=True)
    status, answer = await create(allowed, body_with(lan_host.url("/ok.png")))
    assert status == 200, answer
    assert lan_host.paths() == ["/ok.png"]


async def test_one_deadline_covers_all_hops(make_client, host):
    # Five hops of 0.15 s each: every hop is within 0.5 s, all of them together are not.
    client = await make_client(download_timeout=0.5)
    await refused(client, body_with(host.url(f"/slow-chain/{MAX_REDIRECTS - 1}")),
                  "media_download_timeout")
    assert "/ok.png" not in host.paths()
