"""Sample data (``mock_server.testing.samples``, re-exported by ``fixtures/``): frame pairs the emulator
accepts in every format, bad images refused exactly as each one says, prompts, recorded pairs."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from fixtures import frames, prompts, record
from mock_server.api.image_intake import ACCEPTED_FORMATS, inspect_image
from mock_server.tasks.errors import CATALOGUE
from mock_server.testing.samples import ASPECTS, BAD_IMAGES, FORMATS, frame_pair, sample_pairs
from tests.conftest import assert_catalogue_error, create, kf2v_body, query


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_one_the_service_accepts(fmt):
    pair = frame_pair(seed=3, size="750x1000", fmt=fmt)
    for data in (pair.first, pair.last):
        image = inspect_image(data)  # the emulator's own submit-time checks
        assert (image.width, image.height, image.size_ok) == (750, 1000, True)
        assert image.format in ACCEPTED_FORMATS and ACCEPTED_FORMATS[image.format] == pair.mime
    assert pair.first != pair.last
    assert pair.data_urls()[0].startswith(f"data:{pair.mime};base64,")


def test_pairs_are_seeded_and_cover_every_format_and_aspect():
    assert frame_pair(7, "16:9", "WEBP") == frame_pair(7, "16:9", "WEBP")
    assert frame_pair(7).first != frame_pair(8).first
    pairs = list(sample_pairs(len(ASPECTS)))
    assert {p.fmt for p in pairs} == set(FORMATS)
    assert {(p.width, p.height) for p in pairs} == set(ASPECTS.values())
    assert (750, 1000) in ASPECTS.values()


def test_the_last_frame_is_a_different_frame_of_the_same_size():
    pair = frame_pair(11, (320, 240))
    first = Image.open(io.BytesIO(pair.first)).convert("RGB")
    last = Image.open(io.BytesIO(pair.last)).convert("RGB")
    assert first.size == last.size == (320, 240)
    assert first.tobytes() != last.tobytes()


def test_pairs_write_files_the_sdk_can_upload(tmp_path):
    first, last = frame_pair(2, "3:4", "JPG").write(tmp_path / "frames", "cat")
    assert (first.name, last.name) == ("cat-first.jpg", "cat-last.jpg")
    assert Image.open(first).size == (480, 640)


def test_fixtures_keeps_the_reference_scene_functions():
    # The emulator's clip checks compare against these; they must not change silently.
    assert frames.frame_bytes(320, 240, seed=1) == frames.encode(frames.scene(320, 240, 1), "PNG")
    assert frames.frame_data_url(320, 240, 1).startswith("data:image/png;base64,")
    assert frames.MIME["JPG"] == "image/jpeg"


@pytest.mark.parametrize("name", [n for n, bad in BAD_IMAGES.items() if bad.when == "submit"])
async def test_bad_images_refused_at_submit_as_documented(client, name):
    status, answer = await create(client, kf2v_body(first_frame_url=BAD_IMAGES[name].data_url()))
    assert_catalogue_error(status, answer, BAD_IMAGES[name].error)
    assert client.emulator.store.tasks() == []


@pytest.mark.parametrize("name", [n for n, bad in BAD_IMAGES.items() if bad.when == "task"])
async def test_bad_images_that_fail_the_task(client, name):
    status, answer = await create(client, kf2v_body(last_frame_url=BAD_IMAGES[name].data_url()))
    assert status == 200, answer
    client.emulator.clock.advance(30)
    output = (await query(client, answer["output"]["task_id"]))["output"]
    spec = CATALOGUE[BAD_IMAGES[name].error]
    assert (output["task_status"], output["code"], output["message"]) == (
        "FAILED", spec.code, spec.message)


def test_prompts_are_seeded_in_both_languages():
    zh, en = prompts.zh_prompt(3), prompts.en_prompt(3)
    assert re.search(r"[\u4e00-\u9fff]", zh) and zh.endswith("。")
    assert en.isascii() and en.endswith(".")
    assert prompts.zh_prompt(3) == zh and prompts.prompt(3, "en") == en
    assert len({prompts.en_prompt(seed) for seed in range(10)}) > 5
    with pytest.raises(ValueError):
        prompts.prompt(1, "fr")


def test_recorded_pairs_match_what_the_emulator_answers_today():
    stored = record.stored()
    assert set(stored) == {"create-ok", "query-pending", "query-succeeded", "query-unknown",
                           "error-invalid-api-key", "error-sync-call"}
    assert record.record() == stored, "wire shapes changed: run `python -m fixtures.record`"
    assert stored["query-succeeded"]["response"]["body"]["output"]["task_status"] == "SUCCEEDED"
    assert stored["error-invalid-api-key"]["response"] == {
        "status": 401, "body": {"request_id": "<request_id>", "code": "InvalidApiKey",
                                "message": "Invalid API-key provided."}}
