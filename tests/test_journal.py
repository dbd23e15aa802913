"""The request journal keeps the exchange: headers and bodies (data-URL images elided, binaries
summarised, secrets masked), the reason, quota state and task id; one entry by request id; filters
on every field, virtual-time windows and path prefixes; bounded by count and by bytes. The pytest
plugin's ``kf2v.requests(**filters)`` takes the same filters."""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest

from fixtures.frames import frame_data_url
from mock_server.pipeline.exchange import Exchange
from mock_server.pipeline.keys import EMULATOR
from mock_server.traffic import journal
from mock_server.traffic.journal import (FIELDS, FilterError, Journal, RawBody, elide,
                                         headers_of)
from tests.conftest import BJ_KEY, CREATE, T0, auth, create, create_headers, kf2v_body, query


async def entries(client, **params) -> list[dict]:
    response = await client.get("/_mock/requests", params=params)
    assert response.status == 200, await response.text()
    return (await response.json())["requests"]


async def test_an_entry_keeps_the_exchange(make_client):
    client = await make_client(quotas=True)
    body = kf2v_body()
    status, created = await create(client, body)
    assert status == 200
    entry = (await entries(client, endpoint="create"))[0]
    assert list(entry) == list(FIELDS)
    # The request: headers (the key masked), the JSON body with both images elided.
    assert entry["request_headers"]["Authorization"] == "Bearer sk-kf2…jing"
    assert BJ_KEY not in str(entry)
    assert entry["request_body"]["input"]["prompt"] == body["input"]["prompt"]
    first = entry["request_body"]["input"]["first_frame_url"]
    assert first.startswith("<data URL elided: image/png, ") and first.endswith(" bytes>")
    size = len(body["input"]["first_frame_url"].split(",", 1)[1]) * 3 // 4
    assert f"{size - 2}" in first or f"{size - 1}" in first or f"{size}" in first
    assert entry["request_bytes"] > 1000
    # The answer: the JSON as sent, its headers; the quota window after this request.
    assert entry["response_body"] == created
    assert entry["response_headers"]["Content-Type"].startswith("application/json")
    assert entry["quota"] == {"window": "submit:wan2.2-kf2v-flash", "used": 1, "limit": 2,
                              "per_seconds": 1}
    assert entry["task_id"] == created["output"]["task_id"] and entry["reason"] is None
    # One entry by its request id; brief lists leave the exchange out.
    one = await (await client.get(f"/_mock/requests/{created['request_id']}")).json()
    assert one == entry
    brief = (await entries(client, brief="1"))[0]
    assert "request_body" not in brief and brief["request_id"] == created["request_id"]
    missing = await client.get("/_mock/requests/nope")
    assert missing.status == 404


async def test_binary_and_text_bodies(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    link = (await query(client, task_id))["output"]["video_url"]
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    video = await client.get(path)
    assert video.status == 200
    await client.get(path.split("?")[0])  # unsigned: an OSS XML refusal
    download, refused = await entries(client, endpoint="download")
    assert download["response_body"] == f"<file: video/mp4, {task_id}.mp4>"
    assert download["status"] == 200 and len(await video.read()) > 1000
    assert refused["response_body"].startswith("<?xml") and "<Code>AccessDenied</Code>" in \
        refused["response_body"]
    await client.post(CREATE, data=b"\xff\xfe not json", headers=create_headers())
    bad = (await entries(client, code="InvalidParameter", endpoint="create"))[-1]
    assert "not json" in bad["request_body"]


async def test_filters(client):
    _, one = await create(client)
    client.emulator.clock.advance(60)
    _, two = await create(client)
    await query(client, two["output"]["task_id"])
    await client.get("/api/v1/tasks/x", headers=auth("sk-wrong"))
    later = (T0 + timedelta(seconds=60)).isoformat()
    assert [e["request_id"] for e in await entries(client, until=T0.isoformat())] == [
        one["request_id"]]
    assert len(await entries(client, since=later)) == 3
    assert len(await entries(client, since=T0.isoformat(), until=later)) == 4
    assert len(await entries(client, path_prefix="/api/v1/tasks")) == 2
    assert len(await entries(client, path=CREATE)) == 2
    assert len(await entries(client, status="4xx")) == 1
    assert len(await entries(client, status="2xx", method="GET")) == 1
    assert len(await entries(client, reason="*")) == 1
    assert len(await entries(client, reason="NOT CONFIGURED")) == 1
    assert len(await entries(client, request_id=two["request_id"])) == 1
    assert len(await entries(client, api_key_id="null")) == 1
    assert len(await entries(client, min_latency_ms="0")) == 4
    newest = await entries(client, order="desc", limit="2")
    assert [e["path"] for e in newest] == ["/api/v1/tasks/x", f"/api/v1/tasks/{two['output']['task_id']}"]
    for bad in ({"colour": "red"}, {"since": "yesterday"}, {"since": "2026-01-01T00:00:00"},
                {"limit": "-1"}, {"order": "sideways"}, {"min_latency_ms": "fast"}):
        response = await client.get("/_mock/requests", params=bad)
        assert response.status == 400, bad
        assert (await response.json())["code"] == "InvalidParameter"


def test_bounded_by_count_and_by_bytes():
    by_count = Journal(size=3, max_bytes=10**9)
    for n in range(5):
        by_count.record({"request_id": str(n), "status": 200})
    assert [e["request_id"] for e in by_count.entries()] == ["2", "3", "4"]
    assert by_count.get("0") is None and by_count.get("4")["request_id"] == "4"
    by_bytes = Journal(size=1000, max_bytes=50_000)
    for n in range(100):
        by_bytes.record({"request_id": str(n), "response_body": RawBody(b"x" * 10_000, "text/plain")})
    assert by_bytes.bytes <= 50_000
    kept = by_bytes.entries()
    assert 1 <= len(kept) <= 5 and kept[-1]["request_id"] == "99"
    assert by_bytes.get("0") is None
    huge = Journal(size=10, max_bytes=1000)
    huge.record({"request_id": "big", "response_body": RawBody(b"y" * 5000, "text/plain")})
    assert [e["request_id"] for e in huge.entries()] == ["big"]  # the newest is always kept


async def test_a_sealed_entry_shows_the_same_and_leaves_the_garbage_collector_alone(
        make_client, monkeypatch):
    """Entries SEAL_LAG entries old keep tuples of strings instead of aiohttp's multidicts and
    URLs: a full journal on a busy server must not make every full collection a stall."""
    client = await make_client(quotas=False)
    status, created = await create(client, kf2v_body())
    assert status == 200
    task_id = created["output"]["task_id"]
    await query(client, task_id)
    unsealed = (await entries(client, endpoint="query"))[-1]
    monkeypatch.setattr(journal, "SEAL_LAG", 1)
    for _ in range(3):
        response = await client.get(f"/api/v1/tasks/{task_id}?x=1&y=2",
                                    headers={"authorization": f"Bearer {BJ_KEY}"})
        assert response.status == 200
    sealed = (await entries(client, endpoint="query"))[-3]
    assert sealed["query"] == "x=1&y=2"
    # Headers as the client sent them (this one in lower case), the key still masked.
    assert sealed["request_headers"]["authorization"] == "Bearer sk-kf2…jing"
    # The answer's headers include those aiohttp added while sending: sealing came after.
    for name in ("Content-Length", "Date", "Server", "Content-Type"):
        assert name in sealed["response_headers"], name
    assert sealed["response_headers"].keys() == unsealed["response_headers"].keys()
    assert sealed["task_status"] == unsealed["task_status"] == "PENDING"
    assert sealed["api_key_id"] == unsealed["api_key_id"] is not None
    # What a sealed entry keeps (unread: reading builds and drops it) is none of the collector's
    # business.
    for _ in range(3):
        await client.get(f"/api/v1/tasks/{task_id}", headers=auth(BJ_KEY))
    kept = [entry for entry, _ in client.server.app[EMULATOR].journal._entries][-3:-1]
    assert all(isinstance(e, Exchange) and e._parts is not None for e in kept)
    for _ in range(3):  # each collection untracks one more level of nested tuples
        gc.collect()
    for exchange in kept:
        assert not gc.is_tracked(exchange._parts)
        assert type(exchange._answer_headers) is str


def test_elision_and_masking_helpers():
    url = frame_data_url(320, 240, seed=1)
    body = {"input": {"first_frame_url": url, "prompt": "p", "short": "data:x,1"}, "n": [1, url]}
    elided = elide(body)
    assert elided["input"]["prompt"] == "p" and elided["input"]["short"] == "data:x,1"
    assert elided["n"][1].startswith("<data URL elided: image/png")
    assert body["input"]["first_frame_url"] == url  # not changed in place
    assert RawBody(b"\x00\x01", "image/png").render() == "<binary: image/png, 2 bytes>"
    assert RawBody(b'{"a": 1}', "application/json").render() == {"a": 1}
    assert headers_of([("X-Mock-Admin-Token", "supersecrettoken"), ("A", "1"), ("A", "2")]) == {
        "X-Mock-Admin-Token": "supers…oken", "A": "1, 2"}
    with pytest.raises(FilterError):
        Journal().entries(nonsense="1")


def test_the_plugin_takes_the_same_filters(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile("""
        from datetime import timedelta
        from dashscope import VideoSynthesis
        from mock_server.testing.samples.frames import frame_data_url

        def test_filters(kf2v, dashscope_env):
            kf2v.freeze()
            start = kf2v.now()
            url = frame_data_url(320, 240, seed=1)
            ok = VideoSynthesis.async_call(model="wan2.2-kf2v-flash", first_frame_url=url,
                                           last_frame_url=url, resolution="480P")
            bad = VideoSynthesis.async_call(model="nope", first_frame_url=url,
                                            last_frame_url=url)
            assert bad.status_code == 400
            assert [e["status"] for e in kf2v.requests(endpoint="create")] == [200, 400]
            refused = kf2v.requests(status="4xx", reason="*")
            assert len(refused) == 1 and "'nope' is not served" in refused[0]["reason"]
            assert kf2v.requests(since=start, until=start + timedelta(seconds=1),
                                 path_prefix="/api/v1/services", order="desc",
                                 limit=1)[0]["status"] == 400
            assert kf2v.request(ok.request_id)["task_id"] == ok.output.task_id
            assert kf2v.requests(since=start + timedelta(seconds=5)) == []
    """)
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
