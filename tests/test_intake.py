"""Image intake through the create endpoint: data URLs in every accepted format, http(s) downloads
from a local server (success and every failure), bad images, ``oss://`` without the resolve header,
effect templates and the watermark. Error bodies are checked against ``mock_server/errors.py``."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from fixtures import frames
from fixtures.frames import data_url, frame_bytes, frame_data_url
from mock_server.media.sizing import output_size
from mock_server.tasks.errors import CATALOGUE
from tests.conftest import assert_catalogue_error, create, kf2v_body, query

PNG_LAST = frame_data_url(320, 240, seed=2)


def body_with(first: str, last: str | None = PNG_LAST, model: str = "wan2.2-kf2v-flash",
              resolution: str = "480P", **parameters) -> dict:
    body = kf2v_body(model, resolution)
    body["input"]["first_frame_url"] = first
    if last is None:
        del body["input"]["last_frame_url"]
    else:
        body["input"]["last_frame_url"] = last
    body["parameters"].update(parameters)
    return body


async def refused(client, body, name, **extra_headers):
    """The create is refused at submit with catalogue entry ``name``, and no task is made."""
    status, answer = await create(client, body, **extra_headers)
    assert_catalogue_error(status, answer, name)
    assert (await (await client.get("/_mock/tasks")).json())["tasks"] == []


async def finish(client, seconds: float = 60):
    client.emulator.clock.advance(seconds)
    await client.emulator.synthesizer.drain()


async def dump(client) -> dict[str, dict]:
    tasks = (await (await client.get("/_mock/tasks")).json())["tasks"]
    return {t["task_id"]: t for t in tasks}


# --- data URLs -----------------------------------------------------------------------------------
# (format, first frame size) -> output size at 480P, hard-coded and also checked against the rule.
FORMAT_CASES = [
    ("PNG", (320, 240), (640, 480)),
    ("JPEG", (240, 320), (480, 640)),
    ("BMP", (300, 300), (544, 544)),
    ("WEBP", (500, 250), (768, 384)),
]


async def test_data_urls_in_every_accepted_format_succeed_sized_by_the_tier_rule(client):
    ids = {}
    for fmt, (w, h), _ in FORMAT_CASES:
        first = frame_data_url(w, h, seed=30, fmt=fmt)
        assert first.startswith(f"data:{frames.MIME[fmt]};base64,")
        # The last frame in the same format and aspect ratio as the first.
        status, created = await create(client, body_with(first, frame_data_url(w, h, 31, fmt)))
        assert status == 200, created
        ids[fmt] = created["output"]["task_id"]
    await finish(client)
    tasks = await dump(client)
    for fmt, (w, h), expected in FORMAT_CASES:
        task = tasks[ids[fmt]]
        assert (task["width"], task["height"]) == expected == output_size(w, h, "480P"), fmt
        done = await query(client, ids[fmt])
        assert done["output"]["task_status"] == "SUCCEEDED", (fmt, done)
        assert done["output"]["video_url"]


@pytest.mark.parametrize("model", ["wanx2.1-kf2v-plus", "wan2.2-kf2v-flash"])
async def test_documented_example_750x1000_at_720p_gives_816x1104(client, model):
    first = frame_data_url(750, 1000, seed=32, fmt="JPEG")
    last = frame_data_url(750, 1000, seed=33, fmt="JPEG")
    status, created = await create(client, body_with(first, last, model, "720P"))
    assert status == 200
    task_id = created["output"]["task_id"]
    task = (await dump(client))[task_id]
    assert (task["width"], task["height"]) == (816, 1104)
    if model == "wanx2.1-kf2v-plus":  # render one of them (the 720P encode is the slow part)
        await finish(client)
        assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"


async def test_data_url_file_size_limit_is_10_mb(client):
    image = frame_bytes(320, 240, seed=35)
    limit = 10 * 1024 * 1024
    # A valid PNG padded after its end: exactly 10 MB is accepted, one byte more is not.
    status, created = await create(client, body_with(data_url(image + bytes(limit - len(image)))))
    assert status == 200, created
    too_big = data_url(image + bytes(limit + 1 - len(image)))
    status, answer = await create(client, body_with(too_big))
    assert_catalogue_error(status, answer, "image_size_unsupported")


async def test_data_url_with_jpg_mime_alias_is_accepted(client):
    first = data_url(frame_bytes(320, 240, 34, "JPEG"), "image/jpg")
    status, created = await create(client, body_with(first))
    assert status == 200 and created["output"]["task_status"] == "PENDING"


# --- http downloads from a local server ----------------------------------------------------------
class ImageHost:
    """A small aiohttp server: one path per behaviour, and a record of the paths asked for."""

    def __init__(self):
        self.image = frame_bytes(300, 300, seed=40)
        self.hits: list[str] = []
        self.never = asyncio.Event()  # never set while a request waits on it
        self.app = web.Application()
        self.app.router.add_get("/ok.png", self.ok)
        self.app.router.add_get("/missing.png", self.status(404))
        self.app.router.add_get("/forbidden.png", self.status(403))
        self.app.router.add_get("/hang.png", self.hang)
        self.app.router.add_get("/huge-stream.png", self.huge_stream)
        self.app.router.add_get("/huge-declared.png", self.huge_declared)

    async def ok(self, request):
        self.hits.append(request.path)
        return web.Response(body=self.image, content_type="image/png")

    def status(self, code):
        async def handler(request):
            self.hits.append(request.path)
            return web.Response(status=code, text="no")
        return handler

    async def hang(self, request):
        self.hits.append(request.path)
        await self.never.wait()
        return web.Response(body=self.image, content_type="image/png")

    async def huge_stream(self, request):
        """11 MB, chunked (no Content-Length), then the body never ends: only counting the bytes
        as they arrive can refuse it (waiting for the end would run into the timeout)."""
        self.hits.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = self.image[:8] + bytes(1024 * 1024 - 8)
        try:
            for _ in range(11):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the emulator hung up once it had seen enough
        await self.never.wait()
        return response

    async def huge_declared(self, request):
        """Declares 11 MB, sends a small image and never the rest: the declared length alone
        must refuse it."""
        self.hits.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 11 * 1024 * 1024
        await response.prepare(request)
        await response.write(self.image)
        await self.never.wait()
        return response


@pytest.fixture
async def image_host(aiohttp_server):
    host = ImageHost()
    server = await aiohttp_server(host.app)
    host.url = lambda path: str(server.make_url(path))
    yield host
    host.never.set()  # release a handler still waiting, so the server closes at once


async def test_http_url_is_downloaded_and_used(client, image_host):
    status, created = await create(client, body_with(image_host.url("/ok.png")))
    assert status == 200, created
    assert image_host.hits == ["/ok.png"]
    task_id = created["output"]["task_id"]
    task = (await dump(client))[task_id]
    assert (task["width"], task["height"]) == (544, 544)  # the served 300x300 image, at 480P
    await finish(client)
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"


async def test_http_404_is_a_download_failure(client, image_host):
    await refused(client, body_with(image_host.url("/missing.png")), "media_download_failed")
    assert image_host.hits == ["/missing.png"]


async def test_http_404_on_the_last_frame_is_refused_too(client, image_host):
    await refused(client, body_with(frame_data_url(320, 240, 1), image_host.url("/missing.png")),
                  "media_download_failed")


async def test_http_403_is_an_authorization_error(client, image_host):
    status, answer = await create(client, body_with(image_host.url("/forbidden.png")))
    assert_catalogue_error(status, answer, "media_unauthorized")
    assert answer["message"] == ("Don't have authorization to access the media resource during "
                                 "the data inspection process.")


async def test_http_that_never_answers_times_out(make_client, image_host):
    client = await make_client(download_timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, answer = await create(client, body_with(image_host.url("/hang.png")))
    elapsed = loop.time() - started
    assert_catalogue_error(status, answer, "media_download_timeout")
    assert answer["code"] == "InvalidParameter.DataInspection"
    assert image_host.hits == ["/hang.png"] and not image_host.never.is_set()
    assert 0.25 <= elapsed < 5


async def test_http_body_over_10_mb_streamed_without_length(make_client, image_host):
    # The timeout is only there so that a regression fails fast instead of hanging for 20 s.
    client = await make_client(download_timeout=5)
    await refused(client, body_with(image_host.url("/huge-stream.png")), "image_size_unsupported")
    assert image_host.hits == ["/huge-stream.png"]


async def test_http_body_declared_over_10_mb(make_client, image_host):
    client = await make_client(download_timeout=5)
    await refused(client, body_with(image_host.url("/huge-declared.png")), "image_size_unsupported")
    assert image_host.hits == ["/huge-declared.png"]


async def test_connection_refused_is_a_download_failure(client):
    # A bound socket that does not listen: connecting to it is refused, and the port stays ours.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await refused(client, body_with(f"http://127.0.0.1:{port}/first.png"),
                      "media_download_failed")


# --- bad images ----------------------------------------------------------------------------------
@pytest.mark.parametrize("image, where", [
    (frames.too_small, "first"),
    (frames.too_large_dimensions, "first"),
    (frames.too_small, "last"),
], ids=["too-small", "too-large", "too-small-last"])
async def test_out_of_range_dimensions_are_accepted_then_the_task_fails(client, image, where):
    bad = data_url(image())
    good = frame_data_url(320, 240, seed=1)
    body = body_with(bad, PNG_LAST) if where == "first" else body_with(good, bad)
    status, created = await create(client, body)
    assert status == 200 and created["output"]["task_status"] == "PENDING"
    task_id = created["output"]["task_id"]
    assert (await query(client, task_id))["output"]["task_status"] == "PENDING"

    await finish(client)
    failed = await query(client, task_id)
    spec = CATALOGUE["image_too_small_or_large"]
    assert set(failed) == {"request_id", "output"}  # no usage on a failure
    out = failed["output"]
    assert out["task_status"] == "FAILED"
    assert (out["code"], out["message"]) == (spec.code, spec.message)
    assert (out["code"], out["message"]) == ("InvalidParameter",
                                            "the size of input image is too small or too large.")
    assert "video_url" not in out and "usage" not in failed
    assert out["submit_time"] <= out["scheduled_time"] <= out["end_time"]
    # Nothing was rendered for it.
    assert not (await dump(client))[task_id]["video_ready"]


@pytest.mark.parametrize("make_url, name", [
    (lambda: data_url(frames.corrupt_png()), "image_decode_failed"),
    (lambda: data_url(frames.with_alpha()), "media_format"),
    (lambda: data_url(frames.gif(), "image/png"), "media_format"),
    (lambda: data_url(frames.not_an_image(), "image/png"), "media_format"),
    (lambda: data_url(frame_bytes(320, 240, 1), "image/gif"), "media_format"),
    (lambda: data_url(frames.gif(), "image/gif"), "media_format"),
    (lambda: "data:image/png," + frame_bytes(320, 240, 1).hex(), "invalid_url"),
    (lambda: "data:;base64,AAAA", "invalid_url"),
    (lambda: "data:image/png;base64", "invalid_url"),
], ids=["corrupt", "alpha-png", "gif-as-png", "not-an-image", "png-as-gif-mime", "gif",
        "no-base64-marker", "no-mime", "no-payload"])
async def test_bad_images_are_refused_at_submit(client, make_url, name):
    await refused(client, body_with(make_url()), name)


async def test_bad_last_frame_is_refused_at_submit(client):
    await refused(client, body_with(frame_data_url(320, 240, 1), data_url(frames.with_alpha())),
                  "media_format")


async def test_exact_messages_of_the_format_and_decode_errors(client):
    status, answer = await create(client, body_with(data_url(frames.gif(), "image/gif")))
    assert (status, answer["code"], answer["message"]) == (
        400, "InvalidParameter.DataInspection",
        "The media format is not supported or incorrect for the data inspection.")
    status, answer = await create(client, body_with(data_url(frames.corrupt_png())))
    assert (status, answer["code"], answer["message"]) == (
        400, "InvalidParameter", "Failed to decode the image during the data inspection.")


# --- oss:// --------------------------------------------------------------------------------------
async def test_oss_url_without_the_resolve_header(client):
    await refused(client, body_with("oss://dashscope-instant/abc/2026-11-25/x/first.png"),
                  "oss_resolve_missing")
    status, answer = await create(client, body_with("oss://dashscope-instant/a/b/c.png"))
    assert (status, answer["code"]) == (400, "invalid_parameter_error")


async def test_unknown_oss_key_with_the_header_is_a_download_failure(client):
    await refused(client, body_with("oss://dashscope-instant/abc/2026-11-25/x/first.png"),
                  "media_download_failed", **{"X-DashScope-OssResourceResolve": "enable"})


# --- templates and watermark ---------------------------------------------------------------------
async def test_template_task_with_only_a_first_frame_succeeds(client):
    body = body_with(frame_data_url(320, 240, seed=50), None, "wanx2.1-kf2v-plus", "720P")
    body["input"]["template"] = "hanfu-1"
    del body["input"]["prompt"]
    status, created = await create(client, body)
    assert status == 200, created
    task_id = created["output"]["task_id"]
    task = (await dump(client))[task_id]
    assert (task["template"], task["width"], task["height"]) == ("hanfu-1", 1104, 816)
    await finish(client)
    done = await query(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED" and done["output"]["video_url"]
    assert done["usage"] == {"video_count": 1, "video_duration": 5, "video_ratio": "standard"}


async def test_watermark_task_succeeds(client):
    body = body_with(frame_data_url(320, 240, seed=51), frame_data_url(320, 240, seed=52),
                     watermark=True)
    status, created = await create(client, body)
    assert status == 200, created
    await finish(client)
    done = await query(client, created["output"]["task_id"])
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"] == {"video_duration": 5, "video_count": 1, "SR": 480}


async def test_exif_rotated_jpeg_is_sized_as_it_is_shown(client):
    """A 640x480 JPEG whose EXIF says "rotate 90°" is a portrait picture: the clip is portrait."""
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    frames.scene(640, 480, seed=40).save(buffer, "JPEG", exif=exif)
    rotated = data_url(buffer.getvalue(), "image/jpeg")
    status, created = await create(client, body_with(rotated, frame_data_url(480, 640, 41)))
    assert status == 200, created
    await finish(client)
    task = (await dump(client))[created["output"]["task_id"]]
    assert (task["width"], task["height"]) == output_size(480, 640, "480P")
    assert (await query(client, task["task_id"]))["output"]["task_status"] == "SUCCEEDED"


async def test_when_both_frames_are_bad_the_first_frames_error_is_reported(client):
    for _ in range(5):  # the two frames are inspected concurrently; the answer must not vary
        await refused(client, body_with(data_url(frames.with_alpha()),
                                        data_url(frames.corrupt_png())), "media_format")
        await refused(client, body_with(data_url(frames.corrupt_png()),
                                        data_url(frames.with_alpha())), "image_decode_failed")
