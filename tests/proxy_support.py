"""Shared by the intercepting-proxy tests: the emulator with its proxy on (in this process, so a
test can see every socket it opens), and clients that go through it."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from mock_server.config import Settings
from mock_server.testing.embedded import EmbeddedServer
from mock_server.testing.pytest_plugin import Kf2v
from tests import contract_check

BEIJING, SINGAPORE = "cn-beijing", "ap-southeast-1"
API_HOSTS = {BEIJING: "dashscope.aliyuncs.com", SINGAPORE: "dashscope-intl.aliyuncs.com"}
PRODUCTION = {region: f"https://{host}/api/v1" for region, host in API_HOSTS.items()}
RESULT_HOSTS = {BEIJING: "dashscope-result-bj.oss-cn-beijing.aliyuncs.com",
                SINGAPORE: "dashscope-result-sg.oss-ap-southeast-1.aliyuncs.com"}
UPLOAD_HOSTS = {BEIJING: "dashscope-file-bj.oss-cn-beijing.aliyuncs.com",
                SINGAPORE: "dashscope-file-sg.oss-ap-southeast-1.aliyuncs.com"}
MODELS = {BEIJING: ("wan2.2-kf2v-flash", "480P", "sk-kf2v-mock-beijing"),
          SINGAPORE: ("wan2.1-kf2v-plus", "720P", "sk-kf2v-mock-singapore")}


@pytest.fixture(scope="session")
def proxy_server(tmp_path_factory):
    """Both regions and the intercepting proxy on free loopback ports; the CA in its data dir."""
    settings = Settings(beijing_port=0, singapore_port=0, proxy_port=0, render_preset="ultrafast",
                        log_requests=False, data_dir=tmp_path_factory.mktemp("proxied"),
                        api_keys=[], quotas=False)
    with EmbeddedServer(settings, wrap_app=contract_check.install) as server:
        yield server


@pytest.fixture
def proxied(proxy_server) -> Kf2v:
    """The proxied emulator, reset, its clock frozen (tests move it)."""
    handle = Kf2v(proxy_server)
    handle.reset()
    handle.freeze()
    return handle


def through_proxy(server: EmbeddedServer, verify: str | bool | None = None) -> requests.Session:
    """A requests session that sends everything through the proxy and trusts its CA."""
    session = requests.Session()
    session.trust_env = False  # only what is said here, whatever the environment holds
    session.proxies = {"https": server.proxy_url, "http": server.proxy_url}
    session.verify = server.ca_file if verify is None else verify
    return session


def proxy_address(server: EmbeddedServer) -> tuple[str, int]:
    host, port = server.proxy_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def raw_connect(server: EmbeddedServer, target: str, timeout: float = 10) -> tuple[bytes, socket.socket]:
    """Send ``CONNECT target`` by hand; the proxy's answer head and the open socket."""
    sock = socket.create_connection(proxy_address(server), timeout=timeout)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, sock


def tls_through(server: EmbeddedServer, host: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A TLS connection to ``host`` inside a CONNECT tunnel, verified by ``context``."""
    head, sock = raw_connect(server, f"{host}:443")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return context.wrap_socket(sock, server_hostname=host)
