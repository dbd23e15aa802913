"""Request-body caps on every endpoint that takes a body, and object keys that try to leave the
OSS stand-in's directories (upload keys and download keys, through HTTP)."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from yarl import URL

from mock_server.api import handlers as api_handlers
from mock_server.config import Settings
from mock_server.oss import handlers as oss_handlers
from mock_server.oss.handlers import MAX_FORM_FIELDS_BYTES
from mock_server.tasks.regions import REGIONS
from tests.conftest import CREATE, assert_catalogue_error, auth, create, create_headers, kf2v_body
from tests.test_oss_links import BJ_BUCKET, FAR_FUTURE, oss_error, planted  # noqa: F401 (fixture)
from tests.test_uploads import EC_POLICY, FIRST, get_policy, sdk_form, upload

V2_CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
CAP = 4096


def test_the_documented_default_cap_is_64_mib():
    assert Settings().max_body_bytes == 64 * 1024 * 1024


async def chunked(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def tasks_of(client) -> list:
    return client.emulator.store.tasks()


# --- 413 on the DashScope API ------------------------------------------------------------------
@pytest.mark.parametrize("path", [CREATE, V2_CREATE])
@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_create_over_the_cap_is_413_and_creates_nothing(make_client, path, how):
    client = await make_client(max_body_bytes=CAP)
    data = json.dumps({"model": "wan2.2-kf2v-flash", "pad": "x" * CAP}).encode()
    response = await client.post(path, data=data if how == "declared" else chunked(data),
                                 headers=create_headers())
    assert_catalogue_error(response.status, await response.json(), "payload_too_large")
    assert await tasks_of(client) == []


async def test_a_body_exactly_at_the_cap_is_accepted(make_client):
    body = kf2v_body()
    size = len(json.dumps(body).encode())
    at_cap = await make_client(max_body_bytes=size)
    response = await at_cap.post(CREATE, data=json.dumps(body), headers=create_headers())
    assert response.status == 200, await response.text()
    response = await at_cap.post(CREATE, data=chunked(json.dumps(body).encode()),
                                 headers=create_headers())
    assert response.status == 200, await response.text()
    one_less = await make_client(max_body_bytes=size - 1)
    response = await one_less.post(CREATE, data=json.dumps(body), headers=create_headers())
    assert_catalogue_error(response.status, await response.json(), "payload_too_large")


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_cancel_with_a_body_over_the_cap_is_413_and_cancels_nothing(make_client, how):
    # Cancel never reads its body (the aio SDK sends one); the cap holds all the same.
    cap = 64 * 1024  # room for the create body (two small frames as data URLs)
    client = await make_client(max_body_bytes=cap)
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    data = b"{" + b" " * cap + b"}"
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(),
                                 data=data if how == "declared" else chunked(data))
    assert_catalogue_error(response.status, await response.json(), "payload_too_large")
    assert client.emulator.store.get_task(task_id).canceled_time is None
    # A small body is fine.
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(), json={"x": 1})
    assert response.status == 200


async def test_admin_clock_over_the_cap_is_413(make_client):
    client = await make_client(max_body_bytes=CAP)
    before = client.emulator.clock.now()
    data = json.dumps({"advance_seconds": 60, "pad": "x" * CAP}).encode()
    response = await client.post("/_mock/clock", data=chunked(data))
    assert_catalogue_error(response.status, await response.json(), "payload_too_large")
    assert client.emulator.clock.now() == before


# --- the upload form: OSS's own limits, in OSS XML ---------------------------------------------
async def test_the_upload_host_is_not_under_the_api_cap_but_under_the_policys(make_client,
                                                                             monkeypatch):
    client = await make_client(max_body_bytes=2048)
    policy = await get_policy(client)
    assert len(FIRST) > 2048
    response = await upload(client, policy, "first.png", FIRST)
    assert response.status == 200
    # A form declaring more than the largest policy allows is refused before it is read.
    # The largest grant getPolicy hands out, and the form cap of the upload host that follows it.
    monkeypatch.setattr(api_handlers, "UPLOAD_MAX_BYTES", 1024)
    monkeypatch.setattr(oss_handlers, "UPLOAD_MAX_BYTES", 1024)
    small = await get_policy(client)
    body, headers = sdk_form(small, "big.bin", b"\x01" * (MAX_FORM_FIELDS_BYTES + 2048))
    response = await client.post(urlsplit(small["upload_host"]).path, data=body, headers=headers)
    await oss_error(response, 400, "EntityTooLarge", EC_POLICY,
                    "Your proposed upload exceeds the maximum allowed size.")
    assert [p for p in (client.emulator.oss.root / "uploads").rglob("*") if p.is_file()] == [
        client.emulator.oss.root / "uploads" / policy["upload_dir"] / "first.png"]


async def test_form_fields_before_the_file_are_capped(client):
    policy = await get_policy(client)
    body, headers = sdk_form(policy, "first.png", FIRST,
                             x_oss_content_type="image/png" + " " * MAX_FORM_FIELDS_BYTES)
    response = await client.post(urlsplit(policy["upload_host"]).path, data=body, headers=headers)
    await oss_error(response, 400, "MaxPOSTPreDataLengthExceeded", EC_POLICY,
                    "Your POST request fields preceding the upload file was too large.")
    assert client.emulator.store.uploads() == []


async def test_a_grant_is_for_its_regions_upload_bucket_only(client):
    policy = await get_policy(client)
    body, headers = sdk_form(policy, "first.png", FIRST)
    other = "/" + next(r.upload_bucket for r in REGIONS.values() if r.name != "cn-beijing")
    assert other != urlsplit(policy["upload_host"]).path
    response = await client.post(other, data=body, headers=headers)
    await oss_error(response, 403, "AccessDenied", EC_POLICY)
    assert client.emulator.store.uploads() == []


# --- upload keys that would leave the uploads directory ----------------------------------------
BAD_NAMES = {
    "nul": "{dir}/a\x00b.png",
    "newline": "{dir}/a\nb.png",
    "absolute": "/etc/cron.d/x",
    "backslash-absolute": "\\etc\\x",
    "too-long-segment": "{dir}/" + "a" * 256,
    "too-long-key": "{dir}/" + "/".join(["b" * 200] * 6),
}


@pytest.mark.parametrize("name", list(BAD_NAMES))
async def test_invalid_object_names_are_refused_and_nothing_is_written(client, name):
    policy = await get_policy(client)
    key = BAD_NAMES[name].format(dir=policy["upload_dir"])
    response = await upload(client, policy, "first.png", FIRST, key=key)
    await oss_error(response, 400, "InvalidObjectName", "0016-00000005",
                    "The specified object is not valid.")
    assert client.emulator.store.uploads() == []
    assert not (client.emulator.oss.root / "uploads").exists()


@pytest.mark.parametrize("suffix", ["..\\..\\..\\escape.png", "%2e%2e/%2e%2e/escape.png",
                                    "a/..%2f..%2fescape.png"])
async def test_lookalike_traversals_stay_inside_the_grant(client, suffix):
    # Backslashes and percent signs are ordinary characters in an object name (as on OSS): the
    # object is stored under exactly that name, inside the granted directory.
    policy = await get_policy(client)
    key = f"{policy['upload_dir']}/{suffix}"
    response = await upload(client, policy, "first.png", FIRST, key=key)
    assert response.status == 200
    uploads = (client.emulator.oss.root / "uploads").resolve()
    written = [p for p in uploads.rglob("*") if p.is_file()]
    assert len(written) == 1
    assert written[0].is_relative_to(uploads / policy["upload_dir"])
    assert written[0].read_bytes() == FIRST
    data_dir = client.emulator.data_dir.resolve()
    assert [p for p in data_dir.parent.rglob("escape.png") if not p.is_relative_to(uploads)] == []


# --- download keys that would leave the result bucket ------------------------------------------
def signed_raw(client, key: str, raw_path: str) -> URL:
    oss = client.emulator.oss
    query = urlencode({"Expires": str(FAR_FUTURE), "OSSAccessKeyId": oss.access_key_id,
                       "Signature": oss.link_signature(BJ_BUCKET, key, FAR_FUTURE)})
    return URL(f"/{BJ_BUCKET}/{raw_path}?{query}", encoded=True)


DOWNLOAD_KEYS = {
    "nul": ("inside-data.txt\x00.mp4", "inside-data.txt%00.mp4"),
    "nul-traversal": ("../../inside-data.txt\x00", "%2e%2e/%2e%2e/inside-data.txt%00"),
    "absolute": ("/etc/passwd", "/etc/passwd"),
    "absolute-encoded": ("/etc/passwd", "%2Fetc%2Fpasswd"),
    "backslash": ("..\\..\\inside-data.txt", "..%5C..%5Cinside-data.txt"),
    "mixed": ("..\\../../inside-data.txt", "..%5c%2e%2e/%2E%2E/inside-data.txt"),
    "upload": ("../uploads/dashscope-instant/a/first.png",
               "%2e%2e/uploads/dashscope-instant/a/first.png"),
    "long-segment": ("a" * 300 + ".mp4", "a" * 300 + ".mp4"),
    "long-key": ("/".join(["b" * 250] * 20), "/".join(["b" * 250] * 20)),
}


@pytest.mark.parametrize("name", list(DOWNLOAD_KEYS))
async def test_download_keys_never_reach_a_file_outside_the_bucket(client, planted, name):  # noqa: F811
    key, raw_path = DOWNLOAD_KEYS[name]
    for method in ("GET", "HEAD"):
        response = await client.request(method, signed_raw(client, key, raw_path))
        body = await response.read()
        assert b"SECRET" not in body
        assert response.status in (403, 404), (name, response.status, body[:300])
        assert response.content_type == "application/xml"
        if method == "GET":
            assert ElementTree.fromstring(body).find("Code").text in ("NoSuchKey", "AccessDenied")
