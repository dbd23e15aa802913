"""The task API over HTTP on a frozen clock: create, query through every state, list, cancel,
expiry, keys and regions, and the error envelope."""

from __future__ import annotations

import re

import pytest

from mock_server import EMULATOR_HEADER
from mock_server.tasks.accounts import KeySpec
from tests.conftest import (BJ_KEY, CREATE, SG_HOST, SG_KEY, UUID, assert_error, auth, create,
                            create_headers, kf2v_body, query)

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


async def test_create_answers_pending_with_ids(client):
    status, body = await create(client)
    assert status == 200
    assert set(body) == {"request_id", "output"}
    assert body["output"]["task_status"] == "PENDING"
    assert UUID.match(body["output"]["task_id"]) and UUID.match(body["request_id"])


async def test_lifecycle_pending_running_succeeded_on_the_clock(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    clock = client.emulator.clock

    pending = await query(client, task_id)
    assert pending["output"]["task_status"] == "PENDING"
    assert TIME.match(pending["output"]["submit_time"])
    assert "scheduled_time" not in pending["output"] and "usage" not in pending

    clock.advance(1.0)  # fast profile: queue wait 0.5-0.9 s, run 1.2-1.9 s
    running = await query(client, task_id)
    assert running["output"]["task_status"] == "RUNNING"
    assert TIME.match(running["output"]["scheduled_time"])
    assert "end_time" not in running["output"]

    clock.advance(5)
    await client.emulator.synthesizer.drain()
    done = await query(client, task_id)
    out = done["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert out["submit_time"] < out["scheduled_time"] < out["end_time"]
    assert out["orig_prompt"] == "a cat turns into a dog"
    assert out["actual_prompt"].startswith("a cat turns into a dog")
    assert "/dashscope-result-bj/1d/" in out["video_url"] and "Signature=" in out["video_url"]
    assert done["usage"] == {"video_duration": 5, "video_count": 1, "SR": 480}
    assert "code" not in done


async def test_times_are_beijing_time(client):
    _, created = await create(client)
    body = await query(client, created["output"]["task_id"])
    # T0 is 02:00:00 UTC -> 10:00:00 in UTC+8.
    assert body["output"]["submit_time"] == "2026-11-25 10:00:00.000"


async def test_plus_model_reports_video_ratio_usage_and_no_actual_prompt_without_extend(client):
    body = kf2v_body("wanx2.1-kf2v-plus", "720P")
    body["parameters"]["prompt_extend"] = False
    _, created = await create(client, body)
    client.emulator.clock.advance(10)
    await client.emulator.synthesizer.drain()
    done = await query(client, created["output"]["task_id"])
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"] == {"video_count": 1, "video_duration": 5, "video_ratio": "standard"}
    assert "actual_prompt" not in done["output"]


async def test_video_generation_path_also_accepts_kf2v_models(client):
    status, body = await create(client, path="/api/v1/services/aigc/video-generation/video-synthesis")
    assert status == 200 and body["output"]["task_status"] == "PENDING"


async def test_query_tolerates_trailing_slash_and_stray_query(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    response = await client.get(f"/api/v1/tasks/{task_id}/?prompt_extend=true&resolution=480P",
                                headers=auth())
    assert (await response.json())["output"]["task_status"] == "PENDING"


async def test_unknown_id_answers_unknown_with_200(client):
    body = await query(client, "no-such-task")
    assert body["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


async def test_24_hours_after_creation_the_task_is_unknown_and_unlisted(client):
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(24 * 3600 - 1)
    await client.emulator.synthesizer.drain()
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"
    client.emulator.clock.advance(1)
    assert (await query(client, task_id))["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    listing = await (await client.get("/api/v1/tasks", headers=auth())).json()
    assert listing["total"] == 0


async def test_another_account_never_sees_the_task(make_client):
    keys = ["cn-beijing=sk-alice", "cn-beijing=sk-bob", "cn-beijing=sk-carol@alice-team",
            "cn-beijing=sk-alice2@alice-team"]
    client = await make_client(api_keys=[KeySpec.parse(k) for k in keys])
    _, created = await create(client, headers=create_headers("sk-carol"))
    task_id = created["output"]["task_id"]
    assert (await query(client, task_id, "sk-bob"))["output"]["task_status"] == "UNKNOWN"
    assert (await query(client, task_id, "sk-alice"))["output"]["task_status"] == "UNKNOWN"
    # Keys of one account share its tasks.
    assert (await query(client, task_id, "sk-alice2"))["output"]["task_status"] == "PENDING"
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth("sk-bob"))
    assert response.status == 400


# --- keys, regions, headers ----------------------------------------------------------------------
async def test_no_key_invalid_key_and_wrong_region_key(client):
    status, body = await create(client, headers={"X-DashScope-Async": "enable"})
    assert_error(status, body, 401, "InvalidApiKey", "No API-key provided.")
    status, body = await create(client, headers=create_headers("sk-made-up"))
    assert_error(status, body, 401, "InvalidApiKey", "Invalid API-key provided.")
    # A Singapore key on the Beijing listener, and a Beijing key sent to the Singapore hostname.
    status, body = await create(client, headers=create_headers(SG_KEY))
    assert_error(status, body, 401, "InvalidApiKey", "Invalid API-key provided.")
    response = await client.get("/api/v1/tasks/x", headers=auth(BJ_KEY, Host=SG_HOST))
    assert_error(response.status, await response.json(), 401, "InvalidApiKey",
                 "Invalid API-key provided.")


async def test_singapore_by_host_header_serves_its_own_catalogue(client):
    body = kf2v_body("wan2.1-kf2v-plus", "720P")
    status, created = await create(client, body, create_headers(SG_KEY, Host=SG_HOST))
    assert status == 200
    task_id = created["output"]["task_id"]
    assert (await query(client, task_id, SG_KEY, Host=SG_HOST))["output"]["task_status"] == "PENDING"
    status, refused = await create(client, kf2v_body(), create_headers(SG_KEY, Host=SG_HOST))
    assert_error(status, refused, 400, "InvalidParameter", "Model not exist.")


async def test_missing_async_header_is_refused(client):
    headers = create_headers()
    del headers["X-DashScope-Async"]
    status, body = await create(client, headers=headers)
    assert_error(status, body, 403, "AccessDenied",
                 "current user api does not support synchronous calls")


async def test_malformed_json_and_wrong_types(client):
    response = await client.post(CREATE, data=b"{not json", headers=create_headers())
    assert_error(response.status, await response.json(), 400, "InvalidParameter",
                 "Required body invalid, check the request body format.")
    body = kf2v_body()
    body["parameters"]["seed"] = 1.5
    status, answer = await create(client, body)
    assert_error(status, answer, 400, "InvalidParameter",
                 "The type or value of seed is out of definition.")


async def test_every_response_names_the_emulator_and_unknown_paths_are_dashscope_errors(client):
    response = await client.get("/api/v1/nowhere", headers=auth())
    assert response.headers[EMULATOR_HEADER].startswith("kf2v-mock/")
    assert_error(response.status, await response.json(), 404, "InvalidURL",
                 "Required URL is missing or invalid, check the request URL.")
    ok = await client.get("/_mock/health")
    assert ok.headers[EMULATOR_HEADER].startswith("kf2v-mock/")


async def test_oversized_body_gets_413(make_client):
    client = await make_client(max_body_bytes=1024)
    response = await client.post(CREATE, data=b"x" * 4096, headers=create_headers())
    assert_error(response.status, await response.json(), 413, "BadRequest.TooLarge",
                 "Payload Too Large.")


# --- cancel ------------------------------------------------------------------------------------
async def test_cancel_pending_then_running_is_refused(client):
    _, first = await create(client)
    _, second = await create(client)
    response = await client.post(f"/api/v1/tasks/{first['output']['task_id']}/cancel",
                                 headers=auth())
    assert response.status == 200
    assert set(await response.json()) == {"request_id"}
    canceled = await query(client, first["output"]["task_id"])
    assert canceled["output"]["task_status"] == "CANCELED"
    assert TIME.match(canceled["output"]["end_time"])

    client.emulator.clock.advance(1.0)
    task_id = second["output"]["task_id"]
    assert (await query(client, task_id))["output"]["task_status"] == "RUNNING"
    # The aio SDK's form: trailing slash and a JSON body.
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel/",
                                 json={"model": "", "parameters": {}, "input": ""}, headers=auth())
    assert_error(response.status, await response.json(), 400, "UnsupportedOperation",
                 "Failed to cancel the task, please confirm if the task is in PENDING status.")


# --- concurrency -------------------------------------------------------------------------------
async def test_at_most_two_running_per_account_the_rest_wait_pending(client):
    ids = [(await create(client))[1]["output"]["task_id"] for _ in range(3)]
    client.emulator.clock.advance(1.0)
    statuses = [(await query(client, i))["output"]["task_status"] for i in ids]
    assert statuses == ["RUNNING", "RUNNING", "PENDING"]
    client.emulator.clock.advance(2.0)
    assert (await query(client, ids[2]))["output"]["task_status"] == "RUNNING"


# --- list --------------------------------------------------------------------------------------
async def test_list_shape_filters_and_paging(client):
    ids = [(await create(client))[1]["output"]["task_id"] for _ in range(3)]
    body = kf2v_body("wanx2.1-kf2v-plus", "720P")
    plus_id = (await create(client, body))[1]["output"]["task_id"]
    response = await client.get("/api/v1/tasks?page_no=1&page_size=2", headers=auth())
    page = await response.json()
    assert {"request_id", "total", "total_page", "page_no", "page_size", "data"} <= set(page)
    assert (page["total"], page["total_page"], page["page_no"], page["page_size"]) == (4, 2, 1, 2)
    newest = page["data"][0]
    assert newest["task_id"] == plus_id
    assert newest["user_api_unique_key"] == (
        "apikey:v1:aigc:image2video:video-synthesis:wanx2.1-kf2v-plus")
    assert isinstance(newest["gmt_create"], int) and newest["region"] == "cn-beijing"
    assert "start_time" not in newest and "end_time" not in newest

    flash = await (await client.get("/api/v1/tasks/?model_name=wan2.2-kf2v-flash",
                                    headers=auth())).json()
    assert {item["task_id"] for item in flash["data"]} == set(ids)
    one = await (await client.get(f"/api/v1/tasks?task_id={ids[1]}", headers=auth())).json()
    assert [item["task_id"] for item in one["data"]] == [ids[1]]

    client.emulator.clock.advance(30)
    await client.emulator.synthesizer.drain()
    done = await (await client.get("/api/v1/tasks?status=SUCCEEDED&page_size=10",
                                   headers=auth())).json()
    assert done["total"] == 4
    assert all(item["end_time"] >= item["start_time"] >= item["gmt_create"] for item in done["data"])


async def test_list_time_window(client):
    await create(client)
    # 2026-11-25 10:00 Beijing time is when the task was submitted.
    inside = await (await client.get(
        "/api/v1/tasks?start_time=20261125090000&end_time=20261125110000", headers=auth())).json()
    outside = await (await client.get(
        "/api/v1/tasks?start_time=20261124090000&end_time=20261124110000", headers=auth())).json()
    assert (inside["total"], outside["total"]) == (1, 0)
    response = await client.get("/api/v1/tasks?start_time=20261120000000&end_time=20261125000000",
                                headers=auth())
    assert response.status == 400
    response = await client.get("/api/v1/tasks?start_time=yesterday", headers=auth())
    assert response.status == 400


# --- admin -------------------------------------------------------------------------------------
async def test_admin_clock_and_reset(client):
    body = await (await client.get("/_mock/clock")).json()
    assert body == {"now": "2026-11-25T02:00:00+00:00", "frozen": True}
    moved = await (await client.post("/_mock/clock", json={"advance_seconds": 90})).json()
    assert moved["now"] == "2026-11-25T02:01:30+00:00"
    moved = await (await client.post("/_mock/clock", json={"set": "2026-11-25T03:00:00Z"})).json()
    assert moved["now"] == "2026-11-25T03:00:00+00:00"
    back = await client.post("/_mock/clock", json={"set": "2026-11-25T01:00:00Z"})
    assert back.status == 400 and (await back.json())["code"] == "InvalidParameter"
    _, created = await create(client)
    tasks = await (await client.get("/_mock/tasks")).json()
    assert [t["task_id"] for t in tasks["tasks"]] == [created["output"]["task_id"]]
    assert tasks["tasks"][0]["queue_wait_seconds"] > 0
    await client.post("/_mock/reset")
    assert (await (await client.get("/_mock/tasks")).json())["tasks"] == []


@pytest.mark.parametrize("body", [b'{"advance_seconds": Infinity}', b'{"advance_seconds": NaN}',
                                  b'{"advance_seconds": 1e300}',
                                  b'{"advance_seconds": 300000000000}',
                                  b'{"set": "9999-12-31T23:59:59Z"}'])
async def test_admin_clock_refuses_to_leave_its_range(client, body):
    """Found by fuzzing: a huge advance was a 500, and a clock set near year 9999 broke every later
    request (expiries past datetime's range). Refused now, and the API keeps answering."""
    response = await client.post("/_mock/clock", data=body)
    assert response.status == 400 and (await response.json())["code"] == "InvalidParameter"
    assert (await (await client.get("/_mock/clock")).json())["now"] == "2026-11-25T02:00:00+00:00"
    status, created = await create(client)
    assert status == 200
    assert (await query(client, created["output"]["task_id"]))["output"]["task_status"] == "PENDING"


async def test_same_seed_same_task_ids_after_reset(client):
    first = (await create(client))[1]["output"]["task_id"]
    await client.post("/_mock/reset")
    again = (await create(client))[1]["output"]["task_id"]
    assert first == again


async def test_list_filters_by_api_key_id_and_region(client):
    _, created = await create(client)
    item = (await (await client.get("/api/v1/tasks", headers=auth())).json())["data"][0]
    mine = await (await client.get(f"/api/v1/tasks?api_key_id={item['api_key_id']}&region=cn-beijing",
                                   headers=auth())).json()
    assert [i["task_id"] for i in mine["data"]] == [created["output"]["task_id"]]
    other_key = await (await client.get("/api/v1/tasks?api_key_id=000000", headers=auth())).json()
    other_region = await (await client.get("/api/v1/tasks?region=ap-southeast-1",
                                           headers=auth())).json()
    assert other_key["total"] == other_region["total"] == 0


async def test_succeeded_only_once_the_clip_is_fully_written(client, monkeypatch):
    """Past its end on the clock, a task whose clip is still being encoded keeps reporting RUNNING."""
    import threading

    from mock_server.tasks import rendering as synthesis

    release = threading.Event()
    real_render = synthesis.render_in_worker

    def slow_render(request, out):
        assert release.wait(30), "test never released the render"
        real_render(request, out)

    monkeypatch.setattr(synthesis, "render_in_worker", slow_render)
    _, created = await create(client)
    task_id = created["output"]["task_id"]
    client.emulator.clock.advance(60)
    assert (await query(client, task_id))["output"]["task_status"] == "RUNNING"
    release.set()
    await client.emulator.synthesizer.drain()
    done = await query(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    video = await client.get(done["output"]["video_url"].split(str(client.port), 1)[1])
    assert video.status == 200 and len(await video.read()) > 1000


async def test_a_failed_render_fails_the_task_not_the_server(client, monkeypatch):
    from mock_server.tasks import rendering as synthesis

    def broken_render(request, out):
        raise RuntimeError("ffmpeg exploded")

    monkeypatch.setattr(synthesis, "render_in_worker", broken_render)
    _, created = await create(client)
    client.emulator.clock.advance(60)
    await client.emulator.synthesizer.drain()
    failed = await query(client, created["output"]["task_id"])
    assert failed["output"]["task_status"] == "FAILED"
    assert (failed["output"]["code"], failed["output"]["message"]) == (
        "InternalError.Algo", "An internal error has occured during algorithm execution.")
    assert "usage" not in failed and "video_url" not in failed["output"]


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"[" * 100_000, b"1e999", b'"text"',
                                 b"null", b'{"model": "wan2.2-kf2v-flash", "input": {"first_frame_url"'])
async def test_hostile_bodies_get_a_client_error_never_a_500(client, raw):
    response = await client.post(CREATE, data=raw, headers=create_headers())
    body = await response.json()
    assert response.status == 400 and set(body) == {"request_id", "code", "message"}
