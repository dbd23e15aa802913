"""Slow and stuck clients (mock_server/timeouts.py): a request whose headers never finish, a
connection left idle, a body that stops arriving - each closed after its timeout - while a body
that keeps flowing, a handler that takes its time, and the real SDK polling after an idle gap are
never cut off.

Raw sockets against the emulator as ``kf2v-mock serve`` runs it (an ``EmbeddedServer``: the real
listeners), with timeouts of a fraction of a second; waiting for the server to close a socket is
waiting for an external event, with a deadline.
"""

from __future__ import annotations

import json
import socket
import time
from http import HTTPStatus

import dashscope
import pytest
from dashscope import VideoSynthesis

from fixtures.frames import frame_data_url
from mock_server.config import Settings
from mock_server.testing.embedded import EmbeddedServer
from tests.conftest import BJ_KEY, CREATE, kf2v_body

SHORT = 0.6  # seconds: every timeout in these tests


LONG = 60.0


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """``servers(header=, idle=, body=)``: an emulator with those timeouts (one per combination)."""
    made: dict[tuple, EmbeddedServer] = {}

    def get(header: float = LONG, idle: float = LONG, body: float = LONG) -> EmbeddedServer:
        if (header, idle, body) not in made:
            settings = Settings(beijing_port=0, singapore_port=0, render_preset="ultrafast",
                                log_requests=False, data_dir=tmp_path_factory.mktemp("slow"),
                                quotas=False, header_timeout=header, idle_timeout=idle,
                                body_timeout=body)
            made[header, idle, body] = EmbeddedServer(settings).start()
        return made[header, idle, body]
    yield get
    for running in made.values():
        running.stop()


@pytest.fixture
def server(servers):
    """Every timeout short: nothing a well-behaved client does may be cut off."""
    return servers(SHORT, SHORT, SHORT)


def connect(server) -> socket.socket:
    host, port = server.urls["cn-beijing"].split("//")[1].split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_after(sock: socket.socket, deadline: float = 10.0) -> tuple[float, bytes]:
    """Read until the server closes; (seconds it took, what came)."""
    started, data = time.monotonic(), b""
    sock.settimeout(deadline)
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return time.monotonic() - started, data


def create_request(body: bytes) -> bytes:
    return (f"POST {CREATE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BJ_KEY}\r\n"
            "X-DashScope-Async: enable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()


def test_headers_that_never_finish_are_cut_off(servers):
    sock = connect(servers(header=SHORT))
    sock.sendall(b"GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line, ever
    took, data = closed_after(sock)
    assert data == b"" and SHORT * 0.8 <= took < SHORT + 5


def test_headers_trickled_byte_by_byte_are_cut_off_at_the_header_timeout(servers):
    sock = connect(servers(header=SHORT))
    request = b"GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 200
    started = time.monotonic()
    try:
        for byte in request:  # a byte every 20 ms: each one would reset an idle timer
            sock.sendall(bytes([byte]))
            time.sleep(0.02)
    except (BrokenPipeError, ConnectionResetError):
        pass
    took, data = closed_after(sock)
    assert data == b"" and SHORT * 0.8 <= time.monotonic() - started < SHORT + 5


def test_a_connection_that_sends_nothing_is_closed_when_idle(servers):
    took, data = closed_after(connect(servers(idle=SHORT)))
    assert data == b"" and SHORT * 0.8 <= took < SHORT + 5


def test_a_keep_alive_connection_is_closed_once_idle_between_requests(servers):
    sock = connect(servers(idle=SHORT))
    sock.sendall(f"GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Bearer {BJ_KEY}\r\n\r\n".encode())
    took, data = closed_after(sock)
    assert data.startswith(b"HTTP/1.1 200") and took >= SHORT * 0.8


def test_a_body_that_stalls_is_cut_off_and_nothing_is_created(servers):
    server = servers(body=SHORT)
    body = json.dumps(kf2v_body()).encode()
    sock = connect(server)
    sock.sendall(create_request(body) + body[:100])
    took, data = closed_after(sock)
    assert data == b"" and SHORT * 0.8 <= took < SHORT + 5
    assert server.call(lambda: server.emulator.store.tasks()) == []
    entries = server.emulator.journal.entries(endpoint="create")
    assert entries and entries[-1]["status"] is None  # journaled as a client that went away


def test_a_body_that_keeps_flowing_is_never_cut_off(server):
    body = json.dumps(kf2v_body()).encode()
    sock = connect(server)
    sock.sendall(create_request(body))
    answer = trickle(sock, body, parts=12)  # about 4 timeouts in all
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def trickle(sock, data: bytes, parts: int) -> bytes:
    """Send ``data`` in ``parts`` pieces, never more than a third of a timeout apart; the answer."""
    step = len(data) // parts + 1
    for start in range(0, len(data), step):
        sock.sendall(data[start:start + step])
        time.sleep(SHORT / 3)
    sock.settimeout(10)
    return sock.recv(65536)


def test_an_upload_that_keeps_flowing_is_never_cut_off(server, monkeypatch):
    """The SDK's temporary upload (a multipart form to the OSS stand-in), sent slowly."""
    import requests
    monkeypatch.setattr(dashscope, "base_http_api_url", server.urls["cn-beijing"])
    grant = requests.get(f"{server.urls['cn-beijing']}/uploads",
                         params={"action": "getPolicy", "model": "wan2.2-kf2v-flash"},
                         headers={"Authorization": f"Bearer {BJ_KEY}"}, timeout=30).json()["data"]
    boundary = "kf2vslowupload"
    fields = {"OSSAccessKeyId": grant["oss_access_key_id"], "Signature": grant["signature"],
              "policy": grant["policy"], "key": f"{grant['upload_dir']}/slow.png",
              "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true",
              "success_action_status": "200"}
    form = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    .encode() for k, v in fields.items())
    form += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"'
             "\r\nContent-Type: image/png\r\n\r\n").encode() + b"\x89PNG" + b"x" * 60000
    form += f"\r\n--{boundary}--\r\n".encode()
    path = "/" + grant["upload_host"].split("//")[1].split("/", 1)[1]
    sock = connect(server)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data;"
                  f" boundary={boundary}\r\nContent-Length: {len(form)}\r\n\r\n").encode())
    answer = trickle(sock, form, parts=10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_the_sdk_polls_across_idle_gaps_longer_than_the_idle_timeout(server, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", server.urls["cn-beijing"])
    created = VideoSynthesis.async_call(api_key=BJ_KEY, model="wan2.2-kf2v-flash", prompt="a cat",
                                        first_frame_url=frame_data_url(320, 240, seed=1),
                                        last_frame_url=frame_data_url(320, 240, seed=2),
                                        resolution="480P")
    assert created.status_code == HTTPStatus.OK, created
    for _ in range(3):
        time.sleep(SHORT * 1.5)  # the pooled connection is closed by the server meanwhile
        polled = VideoSynthesis.fetch(created, api_key=BJ_KEY)
        assert polled.status_code == HTTPStatus.OK, polled
    done = VideoSynthesis.wait(created, api_key=BJ_KEY)
    assert done.output.task_status == "SUCCEEDED", done


def test_the_documented_defaults():
    defaults = Settings()
    assert (defaults.header_timeout, defaults.idle_timeout, defaults.body_timeout) == (20, 75, 60)
