"""Every refusal says why — in the journal and in ``X-Kf2v-Mock-Reason`` — while the DashScope
body stays exactly the catalogue's. Each catalogue entry a client can reach by itself is reached
that way and must name the field, URL, key, quota or route; every entry is also reached through a
fault rule and a scenario, whose reasons name the rule (with its draw) or the scenario. Injected
behaviours that still answer 200 get a reason too."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import pytest
from aiohttp import web

from fixtures.frames import BAD_IMAGES, frame_data_url
from mock_server.app import create_app
from mock_server.pipeline.keys import EMULATOR
from mock_server.pipeline.reasons import HEADER_MAX_CHARS, REASON_HEADER, header_value
from mock_server.tasks.errors import CATALOGUE, example_message
from tests import contract_check
from tests.conftest import (BJ_KEY, CREATE, SG_KEY, assert_error, auth, create_headers,
                            kf2v_body)
from tests.conftest import test_settings as settings_for
from tests.netutil import FakeDns
from tests.test_admin_access import PEER_HEADER, fake_peer

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Case:
    """How a client reaches one catalogue entry by itself, and what its reason must say."""
    send: Callable[..., Awaitable]  # (client, env) -> response
    reason: str
    message: str | None = None  # the exact message when the entry is templated
    settings: dict = field(default_factory=dict)


def body_with(**input_overrides) -> dict:
    body = kf2v_body()
    body["input"].update(input_overrides)
    return body


def post_create(body=None, headers=None, data=None):
    async def send(client, env):
        if data is not None:
            return await client.post(CREATE, data=data, headers=headers or create_headers())
        return await client.post(CREATE, json=body if body is not None else kf2v_body(),
                                 headers=headers if headers is not None else create_headers())
    return send


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def url_answering(client, env, status: int) -> str:
    """An image URL on a loopback server that answers ``status``."""
    app = web.Application()
    async def answer(request):
        return web.Response(status=status)
    app.router.add_get("/img.png", answer)
    server = await env["aiohttp_server"](app)
    return str(server.make_url("/img.png"))


def silent_url(env) -> str:
    """A URL whose server accepts the connection and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    env["keep"].append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/slow.png"


async def send_forbidden_image(client, env):
    url = await url_answering(client, env, 403)
    return await client.post(CREATE, json=body_with(first_frame_url=url), headers=create_headers())


async def send_silent(client, env):
    return await client.post(CREATE, json=body_with(first_frame_url=silent_url(env)),
                             headers=create_headers())


async def send_throttled(client, env):
    for _ in range(2):
        assert (await client.post(CREATE, json=kf2v_body(), headers=create_headers())).status == 200
    return await client.post(CREATE, json=kf2v_body(), headers=create_headers())


async def send_admin_from_afar(client, env):
    return await client.post("/_mock/reset", headers={PEER_HEADER: "192.0.2.7"})


def get(path, headers=None):
    async def send(client, env):
        return await client.get(path, headers=headers if headers is not None else auth())
    return send


def request(method, path, headers=None):
    async def send(client, env):
        return await client.request(method, path, headers=headers if headers is not None else auth())
    return send


PORT = closed_port()
NATURAL: dict[str, Case] = {
    "invalid_body": Case(post_create(data=b"{not json"), "the body is not JSON"),
    "model_not_exist": Case(post_create(dict(kf2v_body(), model="wan9-kf2v")),
                            "'wan9-kf2v' is not served in cn-beijing"),
    "field_required": Case(post_create(body_with(first_frame_url=None)),
                           "input.first_frame_url is missing",
                           "Field required: input.first_frame_url"),
    "out_of_definition": Case(post_create(dict(kf2v_body(), parameters={"resolution": "4K"})),
                              "parameters.resolution '4K' is not one of",
                              "The type or value of resolution is out of definition."),
    "empty_input": Case(post_create({"model": "wan2.2-kf2v-flash", "input": {}}),
                        "input is missing or empty"),
    "empty_model": Case(post_create({"input": {"prompt": "x"}}), "model is missing or empty"),
    "illegal_input": Case(post_create({"model": "wan2.2-kf2v-flash", "input": "a cat"}),
                          "input is a str, not an object"),
    "invalid_url": Case(post_create(body_with(first_frame_url="ftp://example.com/a.png")),
                        "input.first_frame_url 'ftp://example.com/a.png' is not an http"),
    "unsupported_cancel": Case(request("POST", f"/api/v1/tasks/{UNKNOWN_ID}/cancel"),
                               f"task '{UNKNOWN_ID}' is unknown to this account"),
    "media_format": Case(post_create(body_with(
        first_frame_url=BAD_IMAGES["wrong_format_gif"].data_url())),
        "input.first_frame_url: not a JPEG, PNG, BMP or WEBP image"),
    "media_download_failed": Case(post_create(body_with(
        first_frame_url=f"http://127.0.0.1:{PORT}/first.png")),
        f"input.first_frame_url: http://127.0.0.1:{PORT}/first.png: connection to "
        f"127.0.0.1:{PORT} refused"),
    "media_download_timeout": Case(send_silent, "no complete answer within 0.3 s",
                                   settings={"download_timeout": 0.3}),
    "media_unauthorized": Case(send_forbidden_image, "/img.png answered 403"),
    "image_decode_failed": Case(post_create(body_with(
        first_frame_url=BAD_IMAGES["corrupt_png"].data_url())),
        "input.first_frame_url: the PNG (400x300) does not decode"),
    "image_size_unsupported": Case(post_create(body_with(
        last_frame_url=BAD_IMAGES["too_large_file"].data_url())),
        "input.last_frame_url: the data URL carries about"),
    "oss_resolve_missing": Case(post_create(body_with(first_frame_url="oss://dashscope-instant/x.png")),
                                "needs the header X-DashScope-OssResourceResolve: enable"),
    "payload_too_large": Case(post_create(data=b"x" * 4096), "is over the 1024-byte body cap",
                              settings={"max_body_bytes": 1024}),
    "invalid_api_key": Case(post_create(headers=create_headers(SG_KEY)),
                            "belongs to ap-southeast-1, and this request went to cn-beijing"),
    "no_api_key": Case(post_create(headers={"X-DashScope-Async": "enable"}),
                       "no Authorization header"),
    "access_denied": Case(send_admin_from_afar, "192.0.2.7 is not one"),
    "sync_not_supported": Case(post_create(headers={"Authorization": f"Bearer {BJ_KEY}"}),
                               "no X-DashScope-Async header"),
    "url_not_found": Case(get("/api/v1/nowhere"), "no route for GET /api/v1/nowhere"),
    "method_not_allowed": Case(request("DELETE", "/api/v1/tasks"),
                               "DELETE is not served on /api/v1/tasks (allowed: GET"),
    "throttling_rate": Case(send_throttled, "quota submit:wan2.2-kf2v-flash of account",
                            settings={"quotas": True}),
}
# Reached only through fault rules and scenarios: the service says these for reasons a client
# cannot cause against an emulator (moderation, billing, its own failures), or as a task's FAILED
# state rather than a refusal (image_too_small_or_large, internal_algo: see the 200 tests below).
INJECTED_ONLY = {
    "invalid_parameter", "invalid_parameter_named", "parameters_specification",
    "parameter_not_valid", "empty_parameters", "url_missing", "url_connection_refused",
    "url_timeout", "unsupported_operation", "image_too_small_or_large", "image_corrupted",
    "multimodal_download_failed", "image_file_format", "data_inspection_failed",
    "input_inspection_failed", "input_kind_inspection_failed", "output_inspection_failed",
    "ip_infringement", "arrearage", "async_not_supported", "policy_expired",
    "model_access_denied", "workspace_access_denied", "app_access_denied", "unpurchased",
    "free_tier_only", "model_not_found", "request_timeout", "throttling", "throttling_burst",
    "throttling_allocation", "internal_error", "internal_algo", "internal_algo_inference",
    "internal_timeout", "internal_upload", "model_unavailable",
}


def test_every_catalogue_entry_is_in_one_table():
    assert set(NATURAL) | INJECTED_ONLY == set(CATALOGUE)
    assert not set(NATURAL) & INJECTED_ONLY


@pytest.fixture
def env(aiohttp_server):
    keep: list = []
    yield {"aiohttp_server": aiohttp_server, "keep": keep}
    for sock in keep:
        sock.close()


@pytest.fixture
def reasons_client(aiohttp_client, tmp_path):
    async def make(**overrides):
        app = contract_check.install(create_app(settings_for(tmp_path, **overrides)))
        app.middlewares.insert(0, fake_peer)
        client = await aiohttp_client(app)
        client.emulator = app[EMULATOR]
        return client
    return make


async def journal_entry(client, request_id: str) -> dict:
    response = await client.get(f"/_mock/requests/{request_id}")
    assert response.status == 200, await response.text()
    return await response.json()


async def assert_refusal_explained(client, response, status: int, code: str, message: str,
                                   reason_part: str) -> dict:
    body = await response.json()
    assert_error(response.status, body, status, code, message)  # exactly the service's body
    entry = await journal_entry(client, body["request_id"])
    assert (entry["status"], entry["code"]) == (status, code)
    assert reason_part in entry["reason"], entry["reason"]
    assert response.headers[REASON_HEADER] == header_value(entry["reason"])
    assert entry["response_body"] == body  # the journal keeps what was answered
    return entry


@pytest.mark.parametrize("name", sorted(NATURAL))
async def test_a_refusal_a_client_causes_says_why(reasons_client, env, name):
    case = NATURAL[name]
    client = await reasons_client(**case.settings)
    response = await case.send(client, env)
    spec = CATALOGUE[name]
    await assert_refusal_explained(client, response, spec.status, spec.code,
                                   case.message or spec.message, case.reason)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
async def test_every_entry_injected_by_a_rule_names_the_rule(reasons_client, name):
    client = await reasons_client()
    rule = await (await client.post("/_mock/faults", json={
        "match": {"endpoint": "create"}, "error": {"name": name}, "probability": 0.999})).json()
    response = await client.post(CREATE, json=kf2v_body(), headers=create_headers())
    spec = CATALOGUE[name]
    entry = await assert_refusal_explained(
        client, response, spec.status, spec.code, example_message(name),
        f"fault rule {rule['id']}: error {spec.status} {spec.code}, draw 0.")
    assert entry["faults"] == [rule["id"]]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
async def test_every_entry_injected_by_a_scenario_names_it(reasons_client, name):
    client = await reasons_client()
    response = await client.get(f"/api/v1/tasks/{UNKNOWN_ID}",
                                headers=auth(**{"X-Mock-Scenario": f"error:{name}"}))
    spec = CATALOGUE[name]
    await assert_refusal_explained(
        client, response, spec.status, spec.code, example_message(name),
        f"scenario error:{name} from the X-Mock-Scenario header: error {spec.status} {spec.code}")


# --- a few refusals worth a closer look --------------------------------------------------------------
async def test_private_and_metadata_addresses_name_the_flag(reasons_client, monkeypatch):
    FakeDns(monkeypatch, {"intranet.example": ["10.0.0.5"]})
    client = await reasons_client()
    cases = {"http://intranet.example/a.png": "intranet.example resolves to 10.0.0.5, a private "
                                              "address (use --allow-private-image-urls)",
             "http://10.0.0.5/a.png": "10.0.0.5 is a private address (use "
                                      "--allow-private-image-urls)",
             "http://169.254.169.254/latest": "169.254.169.254 is a cloud metadata address "
                                              "(always refused)"}
    for url, reason in cases.items():
        response = await client.post(CREATE, json=body_with(first_frame_url=url),
                                     headers=create_headers())
        spec = CATALOGUE["media_download_failed"]
        await assert_refusal_explained(client, response, spec.status, spec.code, spec.message,
                                       f"input.first_frame_url: {url}: {reason}")


async def test_a_dns_failure_and_an_http_404_say_so(reasons_client, env, monkeypatch):
    client = await reasons_client()
    missing = await url_answering(client, env, 404)
    response = await client.post(CREATE, json=body_with(last_frame_url=missing),
                                 headers=create_headers())
    spec = CATALOGUE["media_download_failed"]
    await assert_refusal_explained(client, response, spec.status, spec.code, spec.message,
                                   "input.last_frame_url: http://127.0.0.1:")
    assert "/img.png answered 404" in response.headers[REASON_HEADER]

    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    response = await client.post(CREATE, json=body_with(first_frame_url="http://images.invalid/a"),
                                 headers=create_headers())
    await assert_refusal_explained(client, response, spec.status, spec.code, spec.message,
                                   "images.invalid does not resolve (DNS:")


async def test_the_foreign_task_reason_is_the_unknown_task_reason(reasons_client):
    """Isolation holds for reasons too: another account's task is explained like a missing one."""
    from mock_server.tasks.accounts import KeySpec
    client = await reasons_client(api_keys=[KeySpec.parse("cn-beijing=sk-alice"),
                                            KeySpec.parse("cn-beijing=sk-bob")])
    created = await (await client.post(CREATE, json=kf2v_body(),
                                       headers=create_headers("sk-alice"))).json()
    task_id = created["output"]["task_id"]
    reasons = []
    for task in (task_id, UNKNOWN_ID):
        response = await client.post(f"/api/v1/tasks/{task}/cancel", headers=auth("sk-bob"))
        reasons.append(response.headers[REASON_HEADER].replace(task, "<id>"))
        response = await client.get(f"/api/v1/tasks/{task}", headers=auth("sk-bob"))
        reasons.append(response.headers[REASON_HEADER].replace(task, "<id>"))
    assert reasons[:2] == reasons[2:]


async def test_oss_refusals_say_why_and_keep_the_xml(reasons_client):
    client = await reasons_client()
    response = await client.get("/dashscope-result-bj/1d/00/x.mp4")
    text = await response.text()
    assert response.status == 403 and "<Code>AccessDenied</Code>" in text
    assert "the link has no Expires, OSSAccessKeyId, Signature" in response.headers[REASON_HEADER]
    entry = (await (await client.get("/_mock/requests", params={"endpoint": "download"})).json()
             )["requests"][-1]
    assert entry["reason"] == response.headers[REASON_HEADER]
    assert entry["response_body"] == text
    response = await client.get("/dashscope-result-bj/1d/x.mp4?Expires=1&OSSAccessKeyId=a&"
                                "Signature=b")
    assert response.status == 403
    assert "the link expired at 1970-01-01T00:00:01+00:00" in response.headers[REASON_HEADER]


def test_the_header_is_ascii_one_line_and_bounded():
    value = header_value("prompt '写实风格'\r\nX-Evil: 1 " + "x" * 1000)
    assert value.isascii() and "\n" not in value and "\r" not in value
    assert len(value) == HEADER_MAX_CHARS and value.endswith("...")
    assert "\\u5199" in value


# --- behaviours injected into answers that still succeed ---------------------------------------------
async def test_injected_behaviours_on_a_200_are_explained(reasons_client):
    client = await reasons_client()
    delay = await (await client.post("/_mock/faults", json={
        "match": {"endpoint": "list"}, "delay": {"ms": 5}})).json()
    failing = await (await client.post("/_mock/faults", json={
        "task_failure": {"code": "InternalError.Algo", "at": "end"}, "times": 1})).json()
    response = await client.get("/api/v1/tasks", headers=auth())
    assert response.status == 200
    assert response.headers[REASON_HEADER] == f"fault rule {delay['id']}: answer delayed 5 ms"
    response = await client.post(CREATE, json=kf2v_body(), headers=create_headers())
    assert response.status == 200
    assert (f"fault rule {failing['id']}: the task FAILS at its end with InternalError.Algo, "
            "application 1 of 1") in response.headers[REASON_HEADER]
    response = await client.post(CREATE, json=kf2v_body(), headers=create_headers(
        **{"X-Mock-Scenario": "flaky-polling"}))
    task_id = (await response.json())["output"]["task_id"]
    assert response.headers[REASON_HEADER].startswith(
        "scenario flaky-polling from the X-Mock-Scenario header; scenario flaky-polling "
        "installed fault rule")
    assert task_id in response.headers[REASON_HEADER]
    small = frame_data_url(200, 150, seed=3)
    response = await client.post(CREATE, json=body_with(first_frame_url=small),
                                 headers=create_headers())
    assert response.status == 200
    assert ("input.first_frame_url is 200x150 px, outside [240, 8000] a side: the task is "
            "accepted and FAILS when it starts") in response.headers[REASON_HEADER]


async def test_a_plain_success_has_no_reason(reasons_client):
    client = await reasons_client()
    response = await client.post(CREATE, json=kf2v_body(), headers=create_headers())
    assert response.status == 200 and REASON_HEADER not in response.headers
    entry = await journal_entry(client, (await response.json())["request_id"])
    assert entry["reason"] is None


async def test_a_disconnect_rule_is_in_the_journal_with_its_draw(reasons_client):
    client = await reasons_client(seed=0)
    rule = await (await client.post("/_mock/faults", json={
        "match": {"endpoint": "list"}, "disconnect": {}, "probability": 0.5})).json()
    for _ in range(6):
        try:
            await client.get("/api/v1/tasks", headers=auth())
        except Exception:  # the dropped ones
            pass
    await asyncio.sleep(0)
    entries = (await (await client.get("/_mock/requests", params={"fault": rule["id"]})).json()
               )["requests"]
    assert entries and all(e["status"] is None for e in entries)
    assert all(f"fault rule {rule['id']}: connection closed without an answer, draw 0." in
               e["reason"] and "< probability 0.5" in e["reason"] for e in entries)


async def test_upload_refusals_say_why(reasons_client):
    import aiohttp
    client = await reasons_client()
    policy = (await (await client.get("/api/v1/uploads", params={
        "action": "getPolicy", "model": "wan2.2-kf2v-flash"}, headers=auth())).json())["data"]
    bucket = "/" + policy["upload_host"].rsplit("/", 1)[1]

    def form(**changes):
        data = aiohttp.FormData()
        fields = {"OSSAccessKeyId": policy["oss_access_key_id"], "Signature": policy["signature"],
                  "policy": policy["policy"], "key": policy["upload_dir"] + "/a.png",
                  "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true",
                  "success_action_status": "200", **changes}
        for name, value in fields.items():
            data.add_field(name, value)
        data.add_field("file", b"png", filename="a.png", content_type="image/png")
        return data

    response = await client.post(bucket, data=form(Signature="forged"))
    assert response.status == 403 and "<Code>SignatureDoesNotMatch</Code>" in await response.text()
    assert "the policy's Signature does not match it" in response.headers[REASON_HEADER]
    response = await client.post(bucket, data=form(key="elsewhere/a.png"))
    assert response.status == 403
    assert "is not a plain path inside the granted directory" in response.headers[REASON_HEADER]
    client.emulator.clock.advance(301)
    response = await client.post(bucket, data=form())
    assert response.status == 403 and "Policy expired." in await response.text()
    assert "300 s after getPolicy" in response.headers[REASON_HEADER]


def test_client_input_cannot_break_a_log_line():
    from mock_server.pipeline.reasons import compose
    assert compose("http://a/\nFAKE 200 line", ["x\r"]) == "http://a/\\x0aFAKE 200 line; x\\x0d"
