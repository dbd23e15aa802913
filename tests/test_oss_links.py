"""Result links on the OSS stand-in: a SUCCEEDED task's ``video_url`` served with GET, HEAD and
Range; tampered, unsigned and expired links answered with OSS XML errors; the clip deleted once
task and link have expired; unknown keys; and path traversal never reaching a file it should not."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from yarl import URL

from fixtures.frames import frame_bytes, frame_data_url
from tests.conftest import auth, create, kf2v_body, query
from tests.media_checks import assert_clip

BJ_BUCKET, SG_BUCKET = "dashscope-result-bj", "dashscope-result-sg"
OSS_REQUEST_ID = re.compile(r"^[0-9A-F]{24}$")
FIRST, LAST = frame_bytes(320, 240, seed=61), frame_bytes(320, 240, seed=62)
FAR_FUTURE = 4102444800  # 2100-01-01, for links this file signs itself


async def succeeded_task(client) -> dict:
    """Create one 480P task, run it to SUCCEEDED; its id, link and the clip's path on disk."""
    body = kf2v_body()
    body["input"]["first_frame_url"] = frame_data_url(320, 240, seed=61)
    body["input"]["last_frame_url"] = frame_data_url(320, 240, seed=62)
    status, created = await create(client, body)
    assert status == 200
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    done = await query(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    url = done["output"]["video_url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == str(client.make_url("")).rstrip("/")
    task = client.emulator.service.find(task_id)
    path = client.emulator.synthesizer.path_for(BJ_BUCKET, task.video_key)
    return {"task_id": task_id, "url": url, "path_qs": f"{parts.path}?{parts.query}",
            "path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "key": task.video_key, "end_time": task.end_time, "file": path}


def with_query(link: dict, **changes: str | None) -> URL:
    query = dict(link["query"])
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return URL(f"{link['path']}?{urlencode(query)}", encoded=True)


def signed(client, bucket: str, key: str, expires: int = FAR_FUTURE) -> URL:
    """A link validly signed for ``key``, sent exactly as written (no path normalisation)."""
    return URL(client.emulator.oss.signed_url(f"/{bucket}", bucket, key, expires), encoded=True)


def raw_signed(client, bucket: str, key: str, raw_path: str, expires: int = FAR_FUTURE) -> URL:
    """A valid signature for ``key``, sent on ``raw_path`` (e.g. with ``%2e%2e`` for ``..``)."""
    signature = client.emulator.oss.link_signature(bucket, key, expires)
    query = urlencode({"Expires": str(expires), "OSSAccessKeyId": client.emulator.oss.access_key_id,
                       "Signature": signature})
    return URL(f"/{bucket}/{raw_path}?{query}", encoded=True)


async def oss_error(response, status: int, code: str, ec: str, message: str | None = None) -> dict:
    """Check an OSS XML error response; returns its elements."""
    assert response.status == status
    assert response.content_type == "application/xml"
    assert response.headers["x-oss-ec"] == ec
    request_id = response.headers["x-oss-request-id"]
    assert OSS_REQUEST_ID.match(request_id)
    text = await response.text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(text)
    assert root.tag == "Error"
    elements = {child.tag: child.text for child in root}
    assert elements["Code"] == code
    assert elements["EC"] == ec
    assert elements["RequestId"] == request_id
    assert elements["RecommendDoc"] == f"https://api.aliyun.com/troubleshoot?q={ec}"
    assert elements["HostId"]
    if message is not None:
        assert elements["Message"] == message
    return elements


def iso_ms(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- serving -------------------------------------------------------------------------------------
async def test_get_serves_the_whole_clip_as_mp4(client):
    link = await succeeded_task(client)
    assert link["path"].startswith(f"/{BJ_BUCKET}/1d/")
    assert list(link["query"]) == ["Expires", "OSSAccessKeyId", "Signature"]
    assert link["file"].is_file() and link["file"].is_relative_to(client.emulator.data_dir)
    response = await client.get(URL(link["path_qs"], encoded=True))
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert OSS_REQUEST_ID.match(response.headers["x-oss-request-id"])
    data = await response.read()
    assert data == link["file"].read_bytes()
    assert int(response.headers["Content-Length"]) == len(data)
    assert_clip(data, first=FIRST, last=LAST, resolution="480P")


async def test_the_link_expires_24_hours_after_the_task_ended(client):
    link = await succeeded_task(client)
    expected = int((link["end_time"] + timedelta(hours=24)).timestamp())
    assert int(link["query"]["Expires"]) == expected


async def test_head_gives_the_length_and_no_body(client):
    link = await succeeded_task(client)
    response = await client.head(URL(link["path_qs"], encoded=True))
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == link["file"].stat().st_size
    assert await response.read() == b""


async def test_range_request_gives_206_and_the_slice(client):
    link = await succeeded_task(client)
    size = link["file"].stat().st_size
    response = await client.get(URL(link["path_qs"], encoded=True), headers={"Range": "bytes=0-99"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 0-99/{size}"
    body = await response.read()
    assert body == link["file"].read_bytes()[:100] and len(body) == 100
    tail = await client.get(URL(link["path_qs"], encoded=True),
                            headers={"Range": f"bytes={size - 10}-"})
    assert tail.status == 206 and await tail.read() == link["file"].read_bytes()[-10:]


# --- refused links -------------------------------------------------------------------------------
async def test_tampered_signature_is_refused(client):
    link = await succeeded_task(client)
    tampered = "AAAA" + link["query"]["Signature"][4:]
    response = await client.get(with_query(link, Signature=tampered))
    elements = await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040")
    assert elements["SignatureProvided"] == tampered


async def test_tampered_expires_is_refused(client):
    link = await succeeded_task(client)
    later = str(int(link["query"]["Expires"]) + 7 * 24 * 3600)  # trying to extend the link
    response = await client.get(with_query(link, Expires=later))
    await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.")
    response = await client.get(with_query(link, Expires="soon"))
    await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040")


async def test_other_access_key_id_is_refused(client):
    link = await succeeded_task(client)
    response = await client.get(with_query(link, OSSAccessKeyId="LTAI5tSOMEONEELSE00000"))
    await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040")


@pytest.mark.parametrize("drop", ["Signature", "Expires", "OSSAccessKeyId", "all"])
async def test_missing_signature_parts_are_anonymous_access(client, drop):
    link = await succeeded_task(client)
    if drop == "all":
        url = URL(link["path"], encoded=True)
    else:
        url = with_query(link, **{drop: None})
    response = await client.get(url)
    await oss_error(response, 403, "AccessDenied", "0003-00000001",
                    "You have no right to access this object because of bucket acl.")


async def test_a_signature_is_for_one_key_only(client):
    link = await succeeded_task(client)
    other_key = link["key"].replace(".mp4", "-other.mp4")
    url = URL(f"/{BJ_BUCKET}/{quote(other_key)}?{urlencode(link['query'])}", encoded=True)
    await oss_error(await client.get(url), 403, "SignatureDoesNotMatch", "0002-00000040")


async def test_expired_link_is_refused_and_the_clip_deleted(client):
    link = await succeeded_task(client)
    clock = client.emulator.clock
    expires = int(link["query"]["Expires"])
    url = URL(link["path_qs"], encoded=True)

    # One second before Expires: the task is already gone from the API (24 h after its submit),
    # but the link still serves the clip.
    clock.advance(expires - clock.now().timestamp() - 1)
    gone = await (await client.get(f"/api/v1/tasks/{link['task_id']}", headers=auth())).json()
    assert gone["output"]["task_status"] == "UNKNOWN"
    response = await client.get(url)
    assert response.status == 200 and len(await response.read()) == link["file"].stat().st_size

    clock.advance(2)
    now = clock.now()
    assert now >= link["end_time"] + timedelta(hours=24)
    response = await client.get(url)
    elements = await oss_error(response, 403, "AccessDenied", "0002-00000069",
                               "Request has expired.")
    assert elements["Expires"] == iso_ms(datetime.fromtimestamp(expires, timezone.utc))
    assert elements["ServerTime"].startswith(now.strftime("%Y-%m-%dT%H:%M:%S"))
    head = await client.head(url)
    assert head.status == 403 and head.headers["x-oss-ec"] == "0002-00000069"
    assert await head.read() == b""

    await client.emulator.synthesizer.drain()
    assert not link["file"].exists()
    assert client.emulator.store.get_task(link["task_id"]) is None
    # Even a freshly signed link for the same key finds nothing now.
    response = await client.get(signed(client, BJ_BUCKET, link["key"]))
    await oss_error(response, 404, "NoSuchKey", "0026-00000001")


async def test_link_just_past_24_hours_after_submit_still_has_its_file(client):
    link = await succeeded_task(client)
    clock = client.emulator.clock
    # The task's 24 h (from submit) are over, the link's (from its end) are not: nothing is deleted.
    clock.advance((link["end_time"] - clock.now()).total_seconds() + 24 * 3600 - 0.5)
    await client.emulator.synthesizer.drain()
    assert link["file"].is_file()


# --- unknown keys and traversal ------------------------------------------------------------------
async def test_key_of_no_task_is_no_such_key(client):
    key = "1d/00/20261125/deadbeef/00000000-0000-4000-8000-000000000000.mp4"
    response = await client.get(signed(client, BJ_BUCKET, key))
    elements = await oss_error(response, 404, "NoSuchKey", "0026-00000001",
                               "The specified key does not exist.")
    assert elements["Key"] == key
    head = await client.head(signed(client, BJ_BUCKET, key))
    assert head.status == 404 and await head.read() == b""


async def test_a_task_clip_is_not_in_the_other_regions_bucket(client):
    link = await succeeded_task(client)
    response = await client.get(signed(client, SG_BUCKET, link["key"]))
    await oss_error(response, 404, "NoSuchKey", "0026-00000001")


@pytest.fixture
def planted(client, tmp_path):
    """Files a traversal would like to reach: inside the data dir, outside it, and an upload."""
    data_dir = client.emulator.data_dir
    assert data_dir.parent == tmp_path
    (data_dir / "inside-data.txt").write_text("SECRET-DATA-DIR")
    (tmp_path / "outside.txt").write_text("SECRET-OUTSIDE")
    upload = data_dir / "oss" / "uploads" / "dashscope-instant" / "a" / "first.png"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"SECRET-UPLOAD")
    return data_dir


# Keys relative to <data>/oss/dashscope-result-bj/.
TRAVERSALS = {
    "data-dir": "../../inside-data.txt",
    "outside": "../../../outside.txt",
    "upload": "../uploads/dashscope-instant/a/first.png",
}


@pytest.mark.parametrize("target", list(TRAVERSALS))
@pytest.mark.parametrize("spelling", ["%2e%2e", "%2E%2E", ".%2e"])
async def test_encoded_dot_dot_with_a_valid_signature_serves_nothing(client, planted, target,
                                                                     spelling):
    key = TRAVERSALS[target]
    raw_path = key.replace("..", spelling)
    response = await client.get(raw_signed(client, BJ_BUCKET, key, raw_path))
    body = await response.read()
    assert b"SECRET" not in body
    elements = await oss_error(response, 404, "NoSuchKey", "0026-00000001")
    assert elements["Key"] == key


async def test_dot_dot_into_the_other_regions_bucket_serves_nothing(client):
    link = await succeeded_task(client)
    key = f"../{BJ_BUCKET}/{link['key']}"
    response = await client.get(raw_signed(client, SG_BUCKET, key, key.replace("..", "%2e%2e")))
    await oss_error(response, 404, "NoSuchKey", "0026-00000001")


@pytest.mark.parametrize("target", list(TRAVERSALS))
async def test_literal_dot_dot_never_reaches_a_file(client, planted, target):
    key = TRAVERSALS[target]
    response = await client.get(signed(client, BJ_BUCKET, key))
    assert response.status == 404
    assert b"SECRET" not in await response.read()


async def test_unsigned_traversal_is_refused_before_any_lookup(client, planted):
    response = await client.get(URL(f"/{BJ_BUCKET}/%2e%2e/%2e%2e/inside-data.txt", encoded=True))
    await oss_error(response, 403, "AccessDenied", "0003-00000001")


# --- found by fuzzing (tests/test_fuzz.py) -------------------------------------------------------
@pytest.mark.parametrize("header", ["bytes=0-999999999", "bytes=999999999-", "bytes=-999999999",
                                    "bytes=5-2", "bytes=-0", "bytes=-", "byte=0-9", "bytes=x-y",
                                    "bytes=٠-٩", "items=0-9", ""])
async def test_a_range_oss_cannot_serve_gives_the_whole_object(client, header):
    """OSS ignores a malformed or out-of-range Range and answers 200 with the whole object (aiohttp
    alone answered 416 with an empty body, or a DashScope JSON 400)."""
    link = await succeeded_task(client)
    response = await client.get(URL(link["path_qs"], encoded=True), headers={"Range": header})
    assert response.status == 200, await response.read()
    assert "Content-Range" not in response.headers
    assert await response.read() == link["file"].read_bytes()


async def test_of_several_ranges_oss_serves_the_first(client):
    link = await succeeded_task(client)
    size = link["file"].stat().st_size
    response = await client.get(URL(link["path_qs"], encoded=True),
                                headers={"Range": "bytes=10-19,30-39"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 10-19/{size}"
    assert await response.read() == link["file"].read_bytes()[10:20]
    last = await client.get(URL(link["path_qs"], encoded=True), headers={"Range": "bytes=-5"})
    assert last.status == 206 and await last.read() == link["file"].read_bytes()[-5:]


async def test_a_non_ascii_signature_is_a_mismatch_not_a_500(client):
    link = await succeeded_task(client)
    response = await client.get(with_query(link, Signature="é" + link["query"]["Signature"]))
    await oss_error(response, 403, "SignatureDoesNotMatch", "0002-00000040")


@pytest.mark.parametrize("method, path, resource", [
    ("DELETE", "/dashscope-result-bj/some/key.mp4", "Object"),
    ("PUT", "/dashscope-result-sg/k", "Object"),
    ("GET", "/dashscope-file-bj", "BUCKET"),
    ("TRACE", "/dashscope-file-sg", "BUCKET"),
])
async def test_a_method_a_bucket_does_not_serve_gets_oss_405(client, method, path, resource):
    """Under the OSS buckets OSS answers, not DashScope: its documented 405 MethodNotAllowed."""
    response = await client.request(method, path)
    assert response.status == 405
    assert response.content_type == "application/xml"
    root = ElementTree.fromstring(await response.text())
    elements = {child.tag: child.text for child in root}
    assert (elements["Code"], elements["Message"]) == (
        "MethodNotAllowed", "The specified method is not allowed against this resource.")
    assert (elements["ResourceType"], elements["Method"]) == (resource, method)
    assert elements["RequestId"] == response.headers["x-oss-request-id"]
    assert response.headers["Allow"]


@pytest.mark.parametrize("path", ["/dashscope-result-bj", "/dashscope-result-bj/",
                                  "/dashscope-file-bj/some/key.png"])
async def test_an_unserved_path_under_a_bucket_gets_oss_access_denied(client, path):
    response = await client.get(path)
    await oss_error(response, 403, "AccessDenied", "0003-00000001")
