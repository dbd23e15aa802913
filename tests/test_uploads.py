"""The temporary-upload flow: getPolicy, the PostObject form exactly as the SDK sends it, OSS XML
errors for bad forms, and ``oss://`` keys bound to the account and model that asked, for 48 hours.
Ends with the real SDK's v2 client uploading absolute local paths against the live server."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import timedelta
from urllib.parse import urlsplit
from xml.etree import ElementTree

import dashscope
import pytest
import requests
from yarl import URL

from fixtures.frames import frame_bytes
from mock_server.api import handlers as api_handlers
from mock_server.oss import handlers as oss_handlers
from mock_server.tasks.accounts import KeySpec
from tests.conftest import BJ_KEY, T0, UUID, assert_catalogue_error, auth, create
from tests.media_checks import assert_clip

POLICY = "/api/v1/uploads?action=getPolicy&model={model}"
FLASH, PLUS = "wan2.2-kf2v-flash", "wanx2.1-kf2v-plus"
RESOLVE = {"X-DashScope-OssResourceResolve": "enable"}
FIRST = frame_bytes(320, 240, seed=71)
LAST = frame_bytes(320, 240, seed=72, fmt="JPEG")
EC_POLICY = "0006-00000001"
SIGNATURE_MESSAGE = ("The request signature we calculated does not match the signature you "
                     "provided. Check your key and signing method.")


async def get_policy(client, model: str = FLASH, key: str = BJ_KEY) -> dict:
    response = await client.get(POLICY.format(model=model), headers=auth(key))
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


def sdk_form(grant: dict, filename: str, content: bytes, content_type: str = "image/png",
             **overrides: str | None) -> tuple[bytes, dict[str, str]]:
    """The upload body and headers byte for byte as dashscope's ``OssUtils.upload`` sends them
    (sdk-wire-contract §3.8): the fields in its order, parts without a Content-Type, file last, no
    Authorization. ``overrides`` replace a field's value (None drops it)."""
    fields = {
        "OSSAccessKeyId": grant["oss_access_key_id"],
        "Signature": grant["signature"],
        "policy": grant["policy"],
        "key": f"{grant['upload_dir']}/{filename}",
        "x-oss-object-acl": grant["x_oss_object_acl"],
        "x-oss-forbid-overwrite": grant["x_oss_forbid_overwrite"],
        "success_action_status": "200",
        "x-oss-content-type": content_type,
    }
    for name, value in overrides.items():
        name = name.replace("_", "-") if name.startswith("x_") else name
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
             f'filename="{filename}"\r\n\r\n').encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"user-agent": "dashscope/2.0.2; python/3.11.7", "Accept": "application/json",
               "Date": "Wed, 25 Nov 2026 02:00:00 GMT",
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return body, headers


async def upload(client, grant: dict, filename: str, content: bytes, **overrides):
    """POST the SDK's form for ``grant`` (a getPolicy ``data``) to its upload_host."""
    body, headers = sdk_form(grant, filename, content, **overrides)
    assert "Authorization" not in headers
    return await client.post(urlsplit(grant["upload_host"]).path, data=body, headers=headers)


async def uploaded(client, filename: str = "first.png", content: bytes = FIRST,
                   model: str = FLASH, key: str = BJ_KEY) -> str:
    """Run the whole flow; the ``oss://`` URL it yields."""
    policy = await get_policy(client, model, key)
    response = await upload(client, policy, filename, content)
    assert response.status == 200, await response.text()
    return f"oss://{policy['upload_dir']}/{filename}"


def kf2v(first: str, last: str, model: str = FLASH) -> dict:
    resolution = "480P" if model == FLASH else "720P"
    return {"model": model, "input": {"prompt": "p", "first_frame_url": first,
                                      "last_frame_url": last},
            "parameters": {"resolution": resolution}}


async def oss_error(response, status: int, code: str, message: str, ec: str = EC_POLICY) -> None:
    assert response.status == status
    assert response.content_type == "application/xml"
    assert response.headers["x-oss-ec"] == ec
    root = ElementTree.fromstring(await response.text())
    elements = {child.tag: child.text for child in root}
    assert (root.tag, elements["Code"], elements["Message"], elements["EC"]) == (
        "Error", code, message, ec)
    assert elements["RequestId"] == response.headers["x-oss-request-id"]


def decode_policy(policy: dict) -> dict:
    return json.loads(base64.b64decode(policy["policy"]))


# --- getPolicy -----------------------------------------------------------------------------------
async def test_get_policy_answers_every_documented_field(client):
    response = await client.get(POLICY.format(model=FLASH), headers=auth())
    assert response.status == 200 and response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"request_id", "data"} and UUID.match(body["request_id"])
    data = body["data"]
    assert set(data) == {"policy", "signature", "upload_dir", "upload_host", "expire_in_seconds",
                         "max_file_size_mb", "capacity_limit_mb", "oss_access_key_id",
                         "x_oss_object_acl", "x_oss_forbid_overwrite"}
    assert (data["expire_in_seconds"], data["max_file_size_mb"], data["capacity_limit_mb"]) == (
        300, 100, 999999999)
    assert (data["x_oss_object_acl"], data["x_oss_forbid_overwrite"]) == ("private", "true")
    assert data["oss_access_key_id"] == client.emulator.oss.access_key_id
    assert data["oss_access_key_id"].startswith("LTAI")
    assert data["upload_host"] == str(client.make_url("/dashscope-file-bj"))
    # The recorded shape: a 32-hex directory per account, the day, then this call's request id.
    assert data["upload_dir"] == f"dashscope-instant/{data['upload_dir'].split('/')[1]}/2026-11-25/{body['request_id']}"
    assert re.fullmatch(r"[0-9a-f]{32}", data["upload_dir"].split("/")[1])
    base64.b64decode(data["signature"], validate=True)

    document = decode_policy(data)
    assert document["expiration"] == "2026-11-25T02:05:00.000Z"  # T0 + 300 s
    assert document["conditions"] == [  # as recorded, in order (real-recordings.md difference 4)
        ["content-length-range", 0, 100 * 1024 * 1024], ["starts-with", "$key", data["upload_dir"]],
        {"bucket": "dashscope-file-bj"}, {"x-oss-object-acl": "private"},
        {"x-oss-forbid-overwrite": "true"}]

    again = await get_policy(client)
    assert again["upload_dir"] != data["upload_dir"]
    assert again["upload_dir"].split("/")[1] == data["upload_dir"].split("/")[1]  # same account
    assert again["policy"] != data["policy"] and again["signature"] != data["signature"]


async def test_get_policy_errors(client):
    response = await client.get(POLICY.format(model=FLASH))
    assert_catalogue_error(response.status, await response.json(), "no_api_key")
    response = await client.get(POLICY.format(model=FLASH), headers=auth("sk-nobody"))
    assert_catalogue_error(response.status, await response.json(), "invalid_api_key")
    for model in ("a model", "../x", "-x", "x" * 200):  # not a model name at all
        response = await client.get(POLICY.format(model=model), headers=auth())
        assert_catalogue_error(response.status, await response.json(), "model_not_exist")
    response = await client.get("/api/v1/uploads?action=getPolicy", headers=auth())
    body = await response.json()
    assert (response.status, body["code"], body["message"]) == (
        400, "InvalidParameter", "Field required: model")


# --- the SDK's form ------------------------------------------------------------------------------
async def test_sdk_form_upload_then_oss_urls_render(client):
    first_policy = await get_policy(client)
    response = await upload(client, first_policy, "first.png", FIRST)
    assert response.status == 200
    assert await response.read() == b""
    last_policy = await get_policy(client)
    response = await upload(client, last_policy, "last.jpg", LAST, content_type="image/jpeg")
    assert response.status == 200

    first_key = f"{first_policy['upload_dir']}/first.png"
    stored = client.emulator.store.get_upload(first_key)
    assert stored is not None and stored.size == len(FIRST)
    assert (stored.model, stored.content_type) == (FLASH, "image/png")
    assert (client.emulator.oss.root / "uploads" / first_key).read_bytes() == FIRST

    status, created = await create(client, kf2v(f"oss://{first_key}",
                                                f"oss://{last_policy['upload_dir']}/last.jpg"),
                                   **RESOLVE)
    assert status == 200, created
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    done = await (await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).json()
    assert done["output"]["task_status"] == "SUCCEEDED"
    link = urlsplit(done["output"]["video_url"])
    video = await client.get(URL(f"{link.path}?{link.query}", encoded=True))
    assert video.status == 200
    assert_clip(await video.read(), first=FIRST, last=LAST, resolution="480P")


async def test_without_success_action_status_oss_answers_204(client):
    policy = await get_policy(client)
    response = await upload(client, policy, "first.png", FIRST, success_action_status=None)
    assert response.status == 204


# --- refused forms -------------------------------------------------------------------------------
async def test_bad_signature(client):
    policy = await get_policy(client)
    forged = base64.b64encode(b"x" * 20).decode()
    response = await upload(client, policy, "first.png", FIRST, Signature=forged)
    await oss_error(response, 403, "SignatureDoesNotMatch", SIGNATURE_MESSAGE)
    response = await upload(client, policy, "first.png", FIRST, OSSAccessKeyId="LTAI5tSOMEONEELSE")
    await oss_error(response, 403, "SignatureDoesNotMatch", SIGNATURE_MESSAGE)
    # A policy rewritten to grant more (any key, 1 GB) does not match its signature any more.
    document = decode_policy(policy)
    document["conditions"] = [["content-length-range", 0, 1 << 30], ["starts-with", "$key", ""]]
    rewritten = base64.b64encode(json.dumps(document).encode()).decode()
    response = await upload(client, policy, "first.png", FIRST, policy=rewritten)
    await oss_error(response, 403, "SignatureDoesNotMatch", SIGNATURE_MESSAGE)
    assert client.emulator.store.uploads() == []


async def test_policy_expires_after_300_seconds(client):
    policy = await get_policy(client)
    client.emulator.clock.advance(299)
    response = await upload(client, policy, "first.png", FIRST)
    assert response.status == 200
    client.emulator.clock.advance(2)
    response = await upload(client, policy, "second.png", FIRST)
    await oss_error(response, 403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    assert client.emulator.store.get_upload(f"{policy['upload_dir']}/second.png") is None


@pytest.mark.parametrize("make_key", [
    lambda p, other: "dashscope-instant/someone-else/first.png",
    lambda p, other: f"{other['upload_dir']}/first.png",  # another grant's directory
    lambda p, other: f"{p['upload_dir']}/../escape.png",
    # Names the emulator cannot keep apart on disk: refused the same way.
    lambda p, other: f"{p['upload_dir']}/",
    lambda p, other: f"{p['upload_dir']}//first.png",
    lambda p, other: f"{p['upload_dir']}/./first.png",
], ids=["elsewhere", "other-grant", "dot-dot", "trailing-slash", "empty-segment", "dot-segment"])
async def test_key_outside_upload_dir(client, make_key):
    policy, other = await get_policy(client), await get_policy(client)
    key = make_key(policy, other)
    response = await upload(client, policy, "first.png", FIRST, key=key)
    await oss_error(response, 403, "AccessDenied",
                    'Invalid according to Policy: Policy Condition failed: '
                    f'["starts-with", "$key", "{policy["upload_dir"]}"]')
    assert client.emulator.store.uploads() == []
    assert not (client.emulator.oss.root / "uploads").exists()  # nothing written anywhere
    # The grant still works for a proper key afterwards.
    assert (await upload(client, policy, "first.png", FIRST)).status == 200


async def test_file_over_the_policy_limit(client, monkeypatch):
    # The largest grant getPolicy hands out, and the form cap of the upload host that follows it.
    monkeypatch.setattr(api_handlers, "UPLOAD_MAX_BYTES", 1024)
    monkeypatch.setattr(oss_handlers, "UPLOAD_MAX_BYTES", 1024)
    policy = await get_policy(client)
    assert ["content-length-range", 0, 1024] in decode_policy(policy)["conditions"]
    response = await upload(client, policy, "big.bin", b"\x01" * 1025,
                            content_type="application/octet-stream")
    await oss_error(response, 400, "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.")
    uploads_dir = client.emulator.oss.root / "uploads"
    assert [p for p in uploads_dir.rglob("*") if p.is_file()] == []  # no partial file kept
    assert client.emulator.store.uploads() == []
    status, body = await create(client, kf2v(f"oss://{policy['upload_dir']}/big.bin",
                                             f"oss://{policy['upload_dir']}/big.bin"), **RESOLVE)
    assert_catalogue_error(status, body, "media_download_failed")

    response = await upload(client, policy, "fits.bin", b"\x01" * 1024,
                            content_type="application/octet-stream")
    assert response.status == 200


async def test_overwrite_is_refused_when_forbidden(client):
    policy = await get_policy(client)
    assert (await upload(client, policy, "first.png", FIRST)).status == 200
    other = frame_bytes(320, 240, seed=99)
    response = await upload(client, policy, "first.png", other)
    await oss_error(response, 409, "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                    ec="0016-00000708")
    path = client.emulator.oss.root / "uploads" / policy["upload_dir"] / "first.png"
    assert path.read_bytes() == FIRST
    # Without the header (OSS's default) the object is replaced.
    response = await upload(client, policy, "first.png", other, x_oss_forbid_overwrite=None)
    assert response.status == 200 and path.read_bytes() == other


@pytest.mark.parametrize("field, value", [("x_oss_object_acl", "public-read"),
                                          ("x_oss_forbid_overwrite", "false")])
async def test_a_field_the_grant_fixes_cannot_be_changed(client, field, value):
    """The policy's conditions fix the ACL and no-overwrite. A public developer's note reports this
    text from real OSS for a DashScope grant used with a public-read ACL."""
    policy = await get_policy(client)
    response = await upload(client, policy, "first.png", FIRST, **{field: value})
    name = field.replace("_", "-")
    wanted = policy[field]
    await oss_error(response, 403, "AccessDenied",
                    f'Invalid according to Policy: Policy Condition failed: ["eq","${name}","{wanted}"]',
                    ec=EC_POLICY)
    assert client.emulator.store.uploads() == []


async def test_upload_that_is_not_multipart(client):
    policy = await get_policy(client)
    response = await client.post(urlsplit(policy["upload_host"]).path, data=b"key=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    await oss_error(response, 400, "InvalidArgument",
                    "Form content type is not multipart/form-data.")


# --- what an oss:// key is bound to ---------------------------------------------------------------
@pytest.fixture
async def team_client(make_client):
    keys = ["cn-beijing=sk-alice@team", "cn-beijing=sk-alice2@team", "cn-beijing=sk-bob"]
    return await make_client(api_keys=[KeySpec.parse(k) for k in keys])


async def test_oss_key_is_bound_to_the_account(team_client):
    first = await uploaded(team_client, key="sk-alice")
    last = await uploaded(team_client, "last.jpg", LAST, key="sk-alice")
    status, body = await create(team_client, kf2v(first, last), key="sk-bob", **RESOLVE)
    assert_catalogue_error(status, body, "media_download_failed")
    # Another key of the same main account may use it.
    status, body = await create(team_client, kf2v(first, last), key="sk-alice2", **RESOLVE)
    assert status == 200, body


async def test_oss_key_is_bound_to_the_model(client):
    first = await uploaded(client)
    last = await uploaded(client, "last.jpg", LAST)
    status, body = await create(client, kf2v(first, last, PLUS), **RESOLVE)
    assert_catalogue_error(status, body, "media_download_failed")
    assert (await (await client.get("/_mock/tasks")).json())["tasks"] == []


@pytest.mark.parametrize("model", ["qwen-vl-plus", "wan2.2-t2v-plus", "wan2.1-kf2v-plus"])
async def test_get_policy_for_other_models_grants_uploads_bound_to_them(client, model):
    """real-recordings.md difference 3: the real getPolicy answers 200 for qwen-vl-plus. The grant
    is for that model: its oss:// key is refused in a kf2v create, like any other model's."""
    first = await uploaded(client, model=model)
    last = await uploaded(client, "last.jpg", LAST, model=model)
    assert client.emulator.store.get_upload(first.removeprefix("oss://")).model == model
    status, body = await create(client, kf2v(first, last), **RESOLVE)
    assert_catalogue_error(status, body, "media_download_failed")


async def test_oss_key_needs_the_resolve_header(client):
    first = await uploaded(client)
    status, body = await create(client, kf2v(first, first))
    assert_catalogue_error(status, body, "oss_resolve_missing")


async def test_oss_key_expires_after_48_hours(client):
    first = await uploaded(client)
    last = await uploaded(client, "last.jpg", LAST)
    upload_time = client.emulator.store.get_upload(first[len("oss://"):]).created
    assert upload_time == T0
    client.emulator.clock.advance(timedelta(hours=48).total_seconds() - 1)
    status, body = await create(client, kf2v(first, last), **RESOLVE)
    assert status == 200, body
    client.emulator.clock.advance(1)
    status, body = await create(client, kf2v(first, last), **RESOLVE)
    assert_catalogue_error(status, body, "media_download_failed")
    # The expired uploads are forgotten and their files deleted; expired policies go too.
    await client.emulator.synthesizer.drain()
    assert client.emulator.store.uploads() == [] and client.emulator.store.policies() == []
    assert not any(p.is_file() for p in (client.emulator.data_dir / "oss" / "uploads").rglob("*"))


# --- the real SDK --------------------------------------------------------------------------------
def test_v2_client_uploads_absolute_file_paths(live_server, tmp_path):
    """``dashscope.Client(...).videos.jobs.create`` with ``file:///abs`` (percent-encoded, with a
    space) and a bare absolute path in ``extra_input``: one certificate, two uploads, then an
    oss:// submit."""
    live_server.reset()

    async def unfreeze():
        live_server.emulator.clock.freeze(False)
    live_server.run(unfreeze)

    first = tmp_path / "first frame.png"
    last = tmp_path / "last.jpg"
    first.write_bytes(FIRST)
    last.write_bytes(LAST)
    client = dashscope.Client(api_key=BJ_KEY, base_url=live_server.urls["cn-beijing"],
                              max_retries=0)
    job = client.videos.jobs.create(model=FLASH, prompt="p",
                                    extra_input={"first_frame_url": first.as_uri(),
                                                 "last_frame_url": str(last)},
                                    resolution="480P")
    assert first.as_uri().startswith("file:///") and "%20" in first.as_uri()
    assert job.status == "PENDING"

    async def stored():
        return live_server.emulator.store.uploads()
    uploads = live_server.run(stored)
    assert sorted(u.key.rsplit("/", 1)[1] for u in uploads) == ["first frame.png", "last.jpg"]
    # v2 reuses one certificate per container: both files share one upload_dir.
    assert len({u.key.rsplit("/", 1)[0] for u in uploads}) == 1
    assert all(u.model == FLASH for u in uploads)
    assert {u.content_type for u in uploads} == {"image/png", "image/jpeg"}

    live_server.advance(30)
    live_server.drain()
    done = client.videos.jobs.wait(job.task_id)
    assert done.status == "SUCCEEDED", done
    video = requests.get(done.output["video_url"], timeout=30)
    assert video.status_code == 200
    assert_clip(video.content, first=FIRST, last=LAST, resolution="480P")


# --- found by fuzzing (tests/test_fuzz.py) -------------------------------------------------------
MALFORMED = "The body of your POST request is not well-formed multipart/form-data."


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"key=x"),                                  # no boundary at all
    ("multipart/form-data; boundary=abc", b"--xyz\r\n\r\nnot a part"),  # not the boundary sent
    ("multipart/form-data; boundary=abc",                               # a field cut short
     b'--abc\r\nContent-Disposition: form-data; name="key"\r\n\r\nvalue'),
    ("multipart/form-data; boundary=abc",                               # unknown part encoding
     b'--abc\r\nContent-Disposition: form-data; name="key"\r\nContent-Encoding: br2\r\n\r\nv\r\n'
     b"--abc--\r\n"),
])
async def test_a_malformed_form_is_an_oss_400_not_a_500(client, content_type, body):
    policy = await get_policy(client)
    response = await client.post(urlsplit(policy["upload_host"]).path, data=body,
                                 headers={"Content-Type": content_type})
    await oss_error(response, 400, "InvalidArgument", MALFORMED)


async def test_a_file_part_cut_short_is_an_oss_400_and_stores_nothing(client):
    policy = await get_policy(client)
    body, headers = sdk_form(policy, "cut.png", FIRST)
    cut = body[:body.rindex(b"\r\n--")]  # no closing delimiter after the file
    response = await client.post(urlsplit(policy["upload_host"]).path, data=cut, headers=headers)
    await oss_error(response, 400, "InvalidArgument", MALFORMED)
    uploads = client.emulator.oss.root / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]


async def test_a_non_ascii_form_signature_is_a_mismatch_not_a_500(client):
    policy = await get_policy(client)
    response = await upload(client, policy, "first.png", FIRST, Signature="签名")
    await oss_error(response, 403, "SignatureDoesNotMatch", SIGNATURE_MESSAGE)
