"""The intercepting proxy itself: its CA and certificates, who it serves (the real DashScope and OSS
hostnames, nothing else, never by connecting anywhere), how requests reach the emulator through
it, and how it is started and found (ready file, ServeProcess, ``kf2v-mock ca``)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import ssl
import stat

import pytest
import requests
from cryptography import x509

from mock_server.cli import main
from mock_server.config import Settings
from mock_server.proxy.authority import (CA_FILE, KEY_FILE, LEAF_VALIDITY, CaError,
                                         CertificateAuthority, ca_dir_for)
from mock_server.testing.embedded import EmbeddedServer
from mock_server.testing.serve_process import ServeProcess
from tests.netutil import local_non_loopback_address
from tests.proxy_support import (API_HOSTS, BEIJING, PRODUCTION, RESULT_HOSTS, SINGAPORE,
                                 UPLOAD_HOSTS, proxied, proxy_address, proxy_server,  # noqa: F401
                                 raw_connect, through_proxy, tls_through)

WORKSPACE_HOST = "llm-ws123.cn-beijing.maas.aliyuncs.com"
INTERCEPTED = [*API_HOSTS.values(), *RESULT_HOSTS.values(), *UPLOAD_HOSTS.values(), WORKSPACE_HOST]


# --- the local CA ----------------------------------------------------------------------------------
def test_the_ca_is_made_once_per_directory_with_a_private_key(tmp_path):
    first = CertificateAuthority.open(tmp_path / "ca")
    assert first.created
    assert stat.S_IMODE((tmp_path / "ca" / KEY_FILE).stat().st_mode) == 0o600
    again = CertificateAuthority.open(tmp_path / "ca")
    assert not again.created and again.cert_pem == first.cert_pem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca"]  # no staging left behind
    cert = first.certificate
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [x509.DNSName("aliyuncs.com")]


def test_a_ca_key_others_can_read_is_refused(tmp_path):
    CertificateAuthority.open(tmp_path / "ca")
    (tmp_path / "ca" / KEY_FILE).chmod(0o644)
    with pytest.raises(CaError, match="readable by others.*chmod 600"):
        CertificateAuthority.open(tmp_path / "ca")


def test_a_directory_holding_something_else_is_refused(tmp_path):
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "notes.txt").write_text("mine")
    with pytest.raises(CaError, match="holds no kf2v-mock CA"):
        CertificateAuthority.open(tmp_path / "ca")
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["notes.txt"]


def test_an_expired_ca_says_what_to_do(tmp_path):
    CertificateAuthority.open(tmp_path / "ca", now=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(CaError, match="expired on 2021-12-31; delete that directory"):
        CertificateAuthority.open(tmp_path / "ca")


def test_where_the_ca_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert ca_dir_for(None, None) == tmp_path / "xdg" / "kf2v-mock" / "ca"
    assert ca_dir_for(None, tmp_path / "data") == tmp_path / "data" / "ca"
    assert ca_dir_for(tmp_path / "mine", tmp_path / "data") == tmp_path / "mine"


def test_leaf_certificates(tmp_path):
    authority = CertificateAuthority.open(tmp_path / "ca")
    now = dt.datetime.now(dt.timezone.utc)
    cert = x509.load_pem_x509_certificate(authority.issue("dashscope.aliyuncs.com", now)[0])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["dashscope.aliyuncs.com"]
    assert cert.issuer == authority.certificate.subject
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= LEAF_VALIDITY + dt.timedelta(hours=1)
    cert.verify_directly_issued_by(authority.certificate)


# --- TLS through the tunnel ------------------------------------------------------------------------
@pytest.mark.parametrize("host", INTERCEPTED)
def test_certificates_verify_against_the_ca_and_fail_without_it(proxy_server, host):
    trusting = ssl.create_default_context(cafile=proxy_server.ca_file)
    with tls_through(proxy_server, host, trusting) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
        assert names == [host]
    default = ssl.create_default_context()  # the system's CAs, as any client without the CA
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_through(proxy_server, host, default)


def test_a_certificate_is_for_its_own_host_only(proxy_server):
    trusting = ssl.create_default_context(cafile=proxy_server.ca_file)
    head, sock = raw_connect(proxy_server, "dashscope.aliyuncs.com:443")
    assert head.startswith(b"HTTP/1.1 200 ")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        trusting.wrap_socket(sock, server_hostname="dashscope-intl.aliyuncs.com")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_only_tls_1_2_or_newer(proxy_server):
    def context(version: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=proxy_server.ca_file)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = version
        return ctx
    with tls_through(proxy_server, "dashscope.aliyuncs.com", context(ssl.TLSVersion.TLSv1_2)) as tls:
        assert tls.version() == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        tls_through(proxy_server, "dashscope.aliyuncs.com", context(ssl.TLSVersion.TLSv1_1))


# --- never an open proxy ---------------------------------------------------------------------------
@pytest.fixture
def network_calls(monkeypatch) -> dict[str, list]:
    """Every connect and name lookup any socket of this process (the proxy included) attempts."""
    seen: dict[str, list] = {"connects": [], "lookups": []}
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        seen["connects"].append(address[:2] if isinstance(address, tuple) else address)
        return real_connect(self, address)

    def lookup(host, *args, **kwargs):
        seen["lookups"].append(host.decode() if isinstance(host, bytes) else host)
        return real_lookup(host, *args, **kwargs)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return seen


@pytest.mark.parametrize("target", ["example.com:443", "dashscope.aliyuncs.com:8443",
                                    "169.254.169.254:80", "127.0.0.1:22", "aliyuncs.com:443",
                                    "evil.example:443"])
def test_a_connect_to_any_other_host_is_refused_without_a_connection(proxy_server, network_calls,
                                                                      target):
    head, sock = raw_connect(proxy_server, target)
    body = sock.recv(4096)
    sock.close()
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n"), head
    assert b"Connection: close" in head
    assert f"{target} is not intercepted, and nothing was sent to it".encode() in head + body
    assert network_calls["connects"] == [proxy_address(proxy_server)]  # only ours, to the proxy
    assert set(network_calls["lookups"]) == {proxy_address(proxy_server)[0]}  # ours, no other


def test_a_plain_request_for_any_other_host_is_refused_without_a_connection(
        proxied, proxy_server, network_calls):
    session = through_proxy(proxy_server)
    listener = proxy_server.root_url(BEIJING)  # our own listener is no exception
    for url in ("http://example.com/", f"{listener}/_mock/health", "http://10.0.0.1/api/v1/tasks"):
        response = session.get(url, timeout=10)
        assert response.status_code == 403, url
        assert "is not intercepted, and nothing was sent to it" in response.text
    assert set(network_calls["connects"]) == {proxy_address(proxy_server)}
    assert "example.com" not in network_calls["lookups"]
    assert proxied.requests() == []  # nothing reached the emulator


def test_inside_a_tunnel_the_host_must_be_the_tunnels(proxy_server):
    trusting = ssl.create_default_context(cafile=proxy_server.ca_file)
    for host_header in ("example.com", "dashscope-intl.aliyuncs.com"):
        with tls_through(proxy_server, "dashscope.aliyuncs.com", trusting) as tls:
            tls.sendall(f"GET /api/v1/tasks/x HTTP/1.1\r\nHost: {host_header}\r\n"
                        "Connection: close\r\n\r\n".encode())
            answer = _read_all(tls)
        assert answer.startswith(b"HTTP/1.1 421 "), answer
        assert b"is a tunnel to dashscope.aliyuncs.com" in answer


def test_malformed_or_endless_heads_are_refused(proxy_server):
    with socket.create_connection(proxy_address(proxy_server), timeout=10) as sock:
        sock.sendall(b"CONNECT nonsense HTTP/1.1\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 400 ")
    with socket.create_connection(proxy_address(proxy_server), timeout=10) as sock:
        sock.sendall(b"GET http://dashscope.aliyuncs.com/ HTTP/1.1\r\nX: " + b"a" * 20000)
        assert _read_all(sock).startswith(b"HTTP/1.1 431 ")


def _read_all(sock) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# --- what reaches the emulator ---------------------------------------------------------------------
@pytest.mark.parametrize("region", [BEIJING, SINGAPORE])
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_requests_are_served_as_the_hosts_region(proxied, proxy_server, region, scheme):
    key = proxied.api_key(region)
    url = f"{scheme}://{API_HOSTS[region]}/api/v1/tasks/no-such-task"
    response = through_proxy(proxy_server).get(url, headers={"Authorization": f"Bearer {key}"},
                                               timeout=10)
    assert response.status_code == 200
    assert response.json()["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}
    assert response.headers["X-Kf2v-Mock"].startswith("kf2v-mock/")
    [entry] = proxied.requests()
    assert (entry["region"], entry["path"], entry["endpoint"]) == (
        region, "/api/v1/tasks/no-such-task", "query")


def test_workspace_hosts_are_served_too(proxied, proxy_server):
    response = through_proxy(proxy_server).get(
        f"https://{WORKSPACE_HOST}/api/v1/tasks/t1",
        headers={"Authorization": "Bearer sk-kf2v-mock-beijing"}, timeout=10)
    assert response.status_code == 200 and response.json()["output"]["task_status"] == "UNKNOWN"


def test_oss_hosts_reach_the_stand_in_path_style(proxied, proxy_server):
    session = through_proxy(proxy_server)
    unsigned = session.get(f"https://{RESULT_HOSTS[BEIJING]}/1d/ab/x.mp4", timeout=10)
    assert unsigned.status_code == 403 and "<Code>AccessDenied</Code>" in unsigned.text
    assert f"<HostId>{RESULT_HOSTS[BEIJING]}</HostId>" in unsigned.text
    form = session.post(f"https://{UPLOAD_HOSTS[SINGAPORE]}", files={"file": b"x"}, timeout=10)
    assert form.status_code == 403 and "SignatureDoesNotMatch" in form.text  # reached upload()
    assert [(e["path"], e["region"], e["endpoint"]) for e in proxied.requests()] == [
        ("/dashscope-result-bj/1d/ab/x.mp4", BEIJING, "download"),
        ("/dashscope-file-sg/", SINGAPORE, "upload")]


def test_scenarios_and_faults_act_through_the_proxy(proxied, proxy_server):
    """The emulator's own middlewares answer: a throttled scenario, a dropped connection, a body
    cut short all reach the client inside the tunnel as they would on a listener."""
    session = through_proxy(proxy_server)
    url = f"{PRODUCTION[BEIJING]}/tasks/t1"
    auth = {"Authorization": "Bearer sk-kf2v-mock-beijing"}
    throttled = session.get(url, headers={**auth, "X-Mock-Scenario": "throttled"}, timeout=10)
    assert throttled.status_code == 429 and throttled.json()["code"] == "Throttling.RateQuota"
    with pytest.raises(requests.ConnectionError):
        session.get(url, headers={**auth, "X-Mock-Scenario": "disconnect"}, timeout=10)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(url, headers={**auth, "X-Mock-Scenario": "truncate"}, timeout=10)
    after = session.get(url, headers=auth, timeout=10)  # a new tunnel; the proxy is fine
    assert after.status_code == 200
    assert [e["status"] for e in proxied.requests()] == [429, None, 200, 200]


def test_the_admin_api_follows_the_access_rules(proxied, proxy_server):
    session = through_proxy(proxy_server)
    health = session.get(f"{PRODUCTION[BEIJING].removesuffix('/api/v1')}/_mock/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"  # a loopback peer


def test_the_admin_api_refuses_a_non_loopback_peer_through_the_proxy(tmp_path):
    address = local_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    settings = Settings(beijing_port=0, singapore_port=0, proxy_port=0, proxy_host=address,
                        data_dir=tmp_path / "data", log_requests=False, admin_token="tok")
    with EmbeddedServer(settings) as server:
        assert server.proxy_url == f"http://{address}:{proxy_address(server)[1]}"
        session = through_proxy(server)
        admin = "https://dashscope.aliyuncs.com/_mock/health"
        refused = session.get(admin, timeout=10)
        assert refused.status_code == 403
        assert (refused.json()["code"], refused.json()["message"]) == ("AccessDenied", "Access denied.")
        assert session.get(admin, headers={"X-Mock-Admin-Token": "tok"}, timeout=10).status_code == 200
        api = session.get("https://dashscope.aliyuncs.com/api/v1/tasks/t",
                          headers={"Authorization": "Bearer sk-kf2v-mock-beijing"}, timeout=10)
        assert api.status_code == 200


# --- starting it and finding it ----------------------------------------------------------------
def test_the_ready_file_names_the_proxy_and_the_ca_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    with ServeProcess("--proxy-port", "0", data_dir=data) as server:
        ready = json.loads(server.ready_file.read_text())
        assert set(ready) == {BEIJING, SINGAPORE, "proxy"}
        assert set(server.urls) == {BEIJING, SINGAPORE}  # harnesses reading regions are unaffected
        assert ready["proxy"] == {"url": server.proxy_url, "ca_file": str(data / "ca" / CA_FILE)}
        assert server.proxy_url.startswith("http://127.0.0.1:")
        kept = shutil.copy(server.ca_file, tmp_path / "trusted-ca.pem")  # what a client trusted
    with ServeProcess("--proxy-port", "0", data_dir=data) as server:
        assert (data / "ca" / CA_FILE).read_bytes() == open(kept, "rb").read()
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"https": server.proxy_url}
        answer = session.get("https://dashscope.aliyuncs.com/api/v1/tasks/t", verify=kept,
                             headers={"Authorization": "Bearer sk-kf2v-mock-beijing"}, timeout=10)
        assert answer.status_code == 200
        assert "made a new local CA" not in server.logs()


def test_the_proxy_is_off_unless_asked(tmp_path):
    settings = Settings(beijing_port=0, singapore_port=0, data_dir=tmp_path / "data",
                        ready_file=tmp_path / "ready.json", log_requests=False)
    with EmbeddedServer(settings) as server:
        assert server.proxy_url is None
        assert set(json.loads((tmp_path / "ready.json").read_text())) == {BEIJING, SINGAPORE}
    assert not (tmp_path / "data" / "ca").exists()


def test_the_ca_command_prints_the_path_and_how_to_trust_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert main(["ca", "--path"]) == 0
    default = tmp_path / "xdg" / "kf2v-mock" / "ca" / CA_FILE
    assert capsys.readouterr().out == f"{default}\n" and default.exists()
    assert main(["ca", "--data-dir", str(tmp_path / "data")]) == 0
    text = capsys.readouterr().out
    ca = tmp_path / "data" / "ca" / CA_FILE
    assert text.startswith(f"kf2v-mock local CA: {ca}\n  made just now;")
    for needle in (f"--cacert {ca}", f"REQUESTS_CA_BUNDLE={ca}", f"SSL_CERT_FILE={ca}",
                   f"NODE_EXTRA_CA_CERTS={ca}", f"keytool -importcert -noprompt -alias kf2v-mock -file {ca}",
                   "-Djavax.net.ssl.trustStore=", "-Djavax.net.ssl.trustStorePassword=changeit",
                   "kf2v-mock run --intercept -- COMMAND"):
        assert needle in text, needle
    assert main(["ca", "--data-dir", str(tmp_path / "data")]) == 0
    assert "kept from before" in capsys.readouterr().out
    (tmp_path / "data" / "ca" / KEY_FILE).chmod(0o640)
    assert main(["ca", "--data-dir", str(tmp_path / "data")]) == 1
    assert "readable by others" in capsys.readouterr().err


def test_proxy_flags_and_environment(monkeypatch, tmp_path):
    from mock_server.cli import build_parser, settings_from_args

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["serve", *argv]))
    default = settings()
    assert (default.proxy_port, default.proxy_host, default.ca_dir) == (None, "127.0.0.1", None)
    flagged = settings("--proxy-port", "0", "--proxy-host", "::1", "--ca-dir", str(tmp_path))
    assert (flagged.proxy_port, flagged.proxy_host, flagged.ca_dir) == (0, "::1", tmp_path)
    monkeypatch.setenv("KF2V_MOCK_PROXY_PORT", "24010")
    monkeypatch.setenv("KF2V_MOCK_CA_DIR", str(tmp_path / "ca"))
    assert (settings().proxy_port, settings().ca_dir) == (24010, tmp_path / "ca")
