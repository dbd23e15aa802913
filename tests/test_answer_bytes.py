"""The bytes rules of pipeline/answers.py, on the emulator: compact JSON, the Content-Type of each
endpoint (errors included), gzip for JSON only when the client accepts it, and Date on the virtual
clock. Result videos (GET, HEAD, Range) and the OSS stand-in's answers stay as they were."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime

from tests.conftest import T0, auth, create

TASK_JSON, PLAIN_JSON = "application/json;charset=UTF-8", "application/json"
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


async def succeeded_link(client) -> str:
    status, created = await create(client)
    assert status == 200
    await client.emulator.synthesizer.drain()
    await client.post("/_mock/clock", json={"advance_seconds": 60})
    answer = await (await client.get(f"/api/v1/tasks/{created['output']['task_id']}",
                                     headers=auth())).json()
    link = answer["output"]["video_url"]
    return link[link.index("/", len("http://")):]


async def test_content_type_of_each_endpoint_and_its_errors(client):
    status, created = await create(client)
    assert status == 200
    task_id = created["output"]["task_id"]
    cases = [
        ("GET", f"/api/v1/tasks/{task_id}", auth(), 200, TASK_JSON),
        ("GET", "/api/v1/tasks/x", auth("sk-nobody"), 401, TASK_JSON),
        ("GET", "/api/v1/tasks", auth(), 200, TASK_JSON),
        ("GET", "/api/v1/tasks?status=NOPE", auth(), 400, TASK_JSON),
        ("POST", f"/api/v1/tasks/{task_id}/cancel", auth(), 200, TASK_JSON),
        ("POST", f"/api/v1/tasks/{task_id}/cancel", auth(), 400, TASK_JSON),
        ("GET", "/api/v1/uploads?action=getPolicy&model=qwen-vl-plus", auth(), 200, PLAIN_JSON),
        ("GET", "/api/v1/uploads?action=getPolicy", auth(), 400, PLAIN_JSON),
        ("POST", "/api/v1/services/aigc/image2video/video-synthesis", auth(), 403, PLAIN_JSON),
        ("GET", "/api/v1/nowhere", auth(), 404, PLAIN_JSON),
        ("GET", "/_mock/health", {}, 200, PLAIN_JSON),
    ]
    for method, path, headers, expected_status, content_type in cases:
        response = await client.request(method, path, headers=headers)
        assert (response.status, response.headers["Content-Type"]) == (expected_status, content_type), path
        raw = await response.read()
        assert raw == json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()


async def test_json_is_gzipped_only_for_a_client_that_accepts_it(client):
    for path in ("/api/v1/tasks/x", "/_mock/clock"):
        zipped = await client.get(path, headers={**auth(), **GZIP}, auto_decompress=False)
        assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["Vary"] == "Accept-Encoding"
        plain = await client.get(path, headers={**auth(), **IDENTITY})
        assert "Content-Encoding" not in plain.headers and (await plain.json())
    refused = await client.get("/api/v1/tasks/x", headers={**auth(), "Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


async def test_result_videos_and_oss_answers_are_never_compressed(client):
    link = await succeeded_link(client)
    whole = await client.get(link, headers=GZIP, auto_decompress=False)
    body = await whole.read()
    assert whole.status == 200 and "Content-Encoding" not in whole.headers
    assert whole.headers["Content-Type"] == "video/mp4" and int(whole.headers["Content-Length"]) == len(body)
    head = await client.head(link, headers=GZIP)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(body))
    assert "Content-Encoding" not in head.headers
    part = await client.get(link, headers={**GZIP, "Range": "bytes=10-19"}, auto_decompress=False)
    assert part.status == 206 and await part.read() == body[10:20]
    assert "Content-Encoding" not in part.headers
    forged = await client.get(link.replace("Signature=", "Signature=x"), headers=GZIP,
                              auto_decompress=False)
    assert forged.status == 403 and forged.headers["Content-Type"].startswith("application/xml")
    assert "Content-Encoding" not in forged.headers
    sample = await client.get("/_mock/samples/first.png", headers=GZIP, auto_decompress=False)
    assert sample.status == 200 and "Content-Encoding" not in sample.headers


async def test_the_date_header_follows_the_virtual_clock(client):
    response = await client.get("/api/v1/tasks/x", headers=auth())
    assert parsedate_to_datetime(response.headers["Date"]) == T0
    await client.post("/_mock/clock", json={"advance_seconds": 86400 * 400})
    response = await client.get("/api/v1/tasks/x", headers=auth())
    assert (parsedate_to_datetime(response.headers["Date"]) - T0).days == 400
