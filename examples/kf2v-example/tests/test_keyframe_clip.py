"""keyframe_clip against kf2v-mock, through the plugin's fixtures only (no conftest)."""

import pytest

from keyframe_clip import VideoError, make_video, status, submit

MODELS = {"cn-beijing": ("wan2.2-kf2v-flash", "480P"), "ap-southeast-1": ("wan2.1-kf2v-plus", "720P")}


@pytest.mark.parametrize("kf2v_region", ["cn-beijing", "ap-southeast-1"])
def test_two_images_become_an_mp4(dashscope_env, kf2v, kf2v_frames, kf2v_region, tmp_path):
    first, last = kf2v_frames.files(seed=1, size="750x1000", fmt="JPEG")
    model, resolution = MODELS[kf2v_region]
    video = make_video(first, last, "a paper boat drifts across the pond", out=tmp_path / "clip.mp4",
                       model=model, resolution=resolution)
    assert video.read_bytes()[4:8] == b"ftyp"  # an MP4
    (task,) = kf2v.tasks()
    assert (task["status"], task["region"], task["model"]) == ("SUCCEEDED", kf2v_region, model)


def test_progress_is_driven_by_the_virtual_clock(dashscope_env, kf2v, kf2v_frames):
    kf2v.freeze()  # nothing moves unless the test says so
    task_id = submit(*kf2v_frames.files(seed=2, fmt="PNG"))
    assert status(task_id) == "PENDING"
    kf2v.wait_for(task_id, "RUNNING")
    assert status(task_id) == "RUNNING"
    kf2v.wait_for(task_id)  # SUCCEEDED, without sleeping
    assert status(task_id) == "SUCCEEDED"


def test_an_image_with_transparency_is_refused(dashscope_env, kf2v_frames, tmp_path):
    bad = tmp_path / "alpha.png"
    bad.write_bytes(kf2v_frames.bad("with_alpha").data)
    first, _ = kf2v_frames.files(seed=3)
    with pytest.raises(VideoError) as refused:
        make_video(first, bad, out=tmp_path / "never.mp4")
    assert refused.value.code == "InvalidParameter.DataInspection"


def test_a_task_that_fails_raises(dashscope_env, kf2v_frames, tmp_path):
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(kf2v_frames.bad("too_small").data)  # accepted, then the task FAILS
    first, _ = kf2v_frames.files(seed=4)
    with pytest.raises(VideoError) as failed:
        make_video(first, tiny, out=tmp_path / "never.mp4")
    assert failed.value.code == "InvalidParameter"


def test_each_test_starts_with_an_empty_emulator(kf2v):
    assert kf2v.tasks() == []
