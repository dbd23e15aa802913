"""Clip rendering: container facts, frame content, determinism, templates, watermark.

Small sizes and preset ultrafast keep the whole file to a few seconds.
"""
import io
import os
import pathlib
import pickle
import struct
import sys
from concurrent.futures import ThreadPoolExecutor

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mock_server.media import render as R  # noqa: E402
from mock_server.media.motion import (  # noqa: E402
    MOVES,
    MovePlan,
    layer_boxes,
    move_from_prompt,
    plan_move,
)
from mock_server.media.render import (  # noqa: E402
    RenderError,
    RenderRequest,
    iter_frames,
    render_clip,
)
from mock_server.media.templates import TEMPLATES  # noqa: E402
from mock_server.media.watermark import watermark_for  # noqa: E402

W, H = 192, 144  # 4:3, multiples of 16


# ---------------------------------------------------------------- helpers
def _synthetic(w, h, seed, invert):
    """Gradient + seeded shapes + mild noise: 'photo-like' enough for x264."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h) + 64], -1)
    if invert:
        base = 255 - base
    img = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(10):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 3)), y0 + int(rng.integers(h // 10, h // 3))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=col)
    arr = np.asarray(img).astype(np.int16) + rng.normal(0, 3, (h, w, 3)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _encode(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def _fitted(img):
    """Independent reference for 'scale to cover + centre crop'."""
    return np.asarray(ImageOps.fit(img, (W, H), Image.Resampling.LANCZOS), dtype=np.float32)


def _mae(a, b):
    return float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def _decode(path):
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])
    return meta, frames


def _yuv(flat):
    y = flat[: W * H].reshape(H, W)
    u = flat[W * H: W * H + (W // 2) * (H // 2)].reshape(H // 2, W // 2)
    v = flat[W * H + (W // 2) * (H // 2):].reshape(H // 2, W // 2)
    return y, u, v


def _top_level_boxes(data):
    boxes, off = [], 0
    while off + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
        elif size == 0:
            size = len(data) - off
        boxes.append(typ.decode("latin-1"))
        off += size
    assert off == len(data)
    return boxes


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def images():
    first = _synthetic(400, 300, seed=11, invert=False)   # 4:3
    last = _synthetic(330, 330, seed=22, invert=True)     # square: cropped to 4:3
    return {
        "first": first,
        "last": last,
        "first_bytes": _encode(first, "JPEG", quality=95),
        "last_bytes": _encode(last, "PNG"),
    }


def _req(images, **kw):
    base = dict(first_image=images["first_bytes"], last_image=images["last_bytes"],
                width=W, height=H, seed=123, prompt="", preset="ultrafast")
    base.update(kw)
    return RenderRequest(**base)


@pytest.fixture(scope="module")
def base_clip(images, tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "base.mp4"
    render_clip(_req(images), path)
    meta, frames = _decode(path)
    return {"path": path, "bytes": path.read_bytes(), "meta": meta, "frames": frames}


# ---------------------------------------------------------------- container
def test_container_facts(base_clip):
    meta = base_clip["meta"]
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert "bt709" in meta["pix_fmt"]
    assert meta["fps"] == 30
    assert tuple(meta["size"]) == (W, H)
    assert meta["duration"] == pytest.approx(5.0, abs=1e-3)
    nframes, secs = imageio_ffmpeg.count_frames_and_secs(str(base_clip["path"]))
    assert nframes == 150
    assert secs == pytest.approx(5.0, abs=1e-3)
    assert base_clip["frames"].shape == (150, H, W, 3)


def test_faststart_and_no_audio(base_clip):
    boxes = _top_level_boxes(base_clip["bytes"])
    assert boxes[0] == "ftyp"
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")
    data = base_clip["bytes"]
    assert data.count(b"trak") == 1          # a single track ...
    assert b"vide" in data and b"soun" not in data  # ... which is video; no audio


def test_no_leftover_temp_files(base_clip):
    d = base_clip["path"].parent
    assert sorted(p.name for p in d.iterdir()) == ["base.mp4"]


# ---------------------------------------------------------------- content
def test_first_and_last_frames(base_clip, images):
    fa, fb = _fitted(images["first"]), _fitted(images["last"])
    frames = base_clip["frames"]
    assert _mae(frames[0], fa) < 8
    assert _mae(frames[-1], fb) < 8
    assert _mae(frames[0], fb) > 40
    assert _mae(frames[-1], fa) > 40


def test_transition_is_smooth(base_clip, images):
    frames = base_clip["frames"].astype(np.float32)
    steps = [_mae(frames[i], frames[i + 1]) for i in range(149)]
    assert max(steps) < 6, max(steps)
    mid = frames[75]
    assert _mae(mid, frames[0]) > 10 and _mae(mid, frames[-1]) > 10


def test_exact_endpoints_before_encoding(images):
    """Frame 0 / 149 are exactly the fitted images' yuv420p planes (no resampling)."""
    from mock_server.media.yuv import decode_image, fit_cover, rgb_to_yuv420p

    ref_a = rgb_to_yuv420p(np.asarray(fit_cover(decode_image(images["first_bytes"]), W, H)))
    ref_b = rgb_to_yuv420p(np.asarray(fit_cover(decode_image(images["last_bytes"]), W, H)))
    for prompt in ("", "zoom in", "拉远", "pan left", "向右", "上升", "俯拍", "static camera"):
        frames = [f.copy() for f in iter_frames(_req(images, prompt=prompt))]
        assert len(frames) == 150
        for got, want in zip(_yuv(frames[0]), ref_a):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(_yuv(frames[-1]), ref_b):
            np.testing.assert_array_equal(got, want)


def test_camera_move_changes_middle_frames(images):
    def mid(prompt):
        for i, f in enumerate(iter_frames(_req(images, prompt=prompt))):
            if i == 60:
                return f.astype(np.float32)

    static = mid("固定镜头")
    for prompt in ("镜头推进", "zoom out", "pan left", "pan right", "camera rises", "俯拍"):
        assert _mae(mid(prompt), static) > 2, prompt


def test_exif_orientation_is_applied(images):
    rotated = images["first"].rotate(90, expand=True)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 8                                   # ... and tagged "rotate 90 CW to view"
    data = _encode(rotated, "JPEG", quality=95, exif=exif.tobytes())
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    first = next(iter_frames(_req(images, first_image=data)))
    ref = np.asarray(ImageOps.fit(upright, (W, H), Image.Resampling.LANCZOS))
    from mock_server.media.yuv import rgb_to_yuv420p

    y_ref = rgb_to_yuv420p(ref)[0].astype(np.float32)
    assert _mae(_yuv(first)[0], y_ref) < 3


# ---------------------------------------------------------------- determinism
def test_byte_identical_rerender(base_clip, images, tmp_path):
    out = tmp_path / "again.mp4"
    render_clip(_req(images), out)
    assert out.read_bytes() == base_clip["bytes"]


def test_seed_changes_bytes(base_clip, images, tmp_path):
    out = tmp_path / "seed.mp4"
    render_clip(_req(images, seed=124), out)
    assert out.read_bytes() != base_clip["bytes"]


def test_pacing_gives_the_same_bytes_and_gives_up_rather_than_deadlock(
        base_clip, images, tmp_path, monkeypatch):
    """Frames go down the pipe a bounded number ahead of those ffmpeg reports encoded. An encoder
    that holds back more than that never reports progress: the render stops pacing after a
    while instead of waiting for ever."""
    monkeypatch.setattr(R, "x264_threading", lambda w, h: R._X264_LARGE)  # pace this small clip
    paced = tmp_path / "paced.mp4"
    render_clip(_req(images, preset="veryfast"), paced)
    unpaced = tmp_path / "unpaced.mp4"
    monkeypatch.setattr(R, "FRAMES_AHEAD", 10**6)
    render_clip(_req(images, preset="veryfast"), unpaced)
    assert paced.read_bytes() == unpaced.read_bytes()
    # Nothing encodes until 4 frames are in: waiting for frame N before writing frame N stalls.
    monkeypatch.setattr(R, "FRAMES_AHEAD", 0)
    monkeypatch.setattr(R, "_PROGRESS_PATIENCE_S", 0.2)
    stalled = tmp_path / "stalled.mp4"
    render_clip(_req(images, preset="veryfast"), stalled)
    assert stalled.read_bytes() == paced.read_bytes()


def test_threads_and_pickle(images, tmp_path):
    req = _req(images, seed=5, prompt="pan right")
    assert pickle.loads(pickle.dumps(req)) == req
    paths = [tmp_path / f"t{i}.mp4" for i in range(2)]
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda p: render_clip(req, p), paths))
    assert paths[0].read_bytes() == paths[1].read_bytes()


# ---------------------------------------------------------------- motion plan
@pytest.mark.parametrize(
    "prompt,move",
    [
        ("镜头缓缓推进，女孩微笑", "zoom_in"),
        ("镜头拉远，展示全景", "zoom_out"),
        ("镜头向左平移", "pan_left"),
        ("镜头右移", "pan_right"),
        ("无人机上升", "rise"),
        ("俯拍城市", "descend"),
        ("The camera slowly zooms in on her face", "zoom_in"),
        ("Camera pulls back to reveal the city", "zoom_out"),
        ("Pan left across the valley", "pan_left"),
        ("slow pan-right over the sea", "pan_right"),
        ("The drone rises above the forest", "rise"),
        ("camera tilts down to the street", "descend"),
        ("static camera, a cat sleeps", "static"),
        ("镜头推进然后拉远", "zoom_in"),  # earliest wins
        ("a cat sleeps on a sofa", None),
        ("", None),
    ],
)
def test_move_from_prompt(prompt, move):
    assert move_from_prompt(prompt) == move


def test_plan_seed_fallback_and_prompt_override():
    moves = {plan_move("", s).move for s in range(200)}
    assert moves == set(MOVES) - {"static"}
    assert plan_move("pan left", 1).move == "pan_left"
    assert plan_move("", 1) == plan_move("", 1)
    assert plan_move("", 1) != plan_move("", 2)


@pytest.mark.parametrize("move", MOVES)
def test_boxes_start_and_end_on_full_frames(move):
    plan = MovePlan(move=move, zoom=1.18, shift=0.07, fade_start=0.1, fade_end=0.9)
    full = (0.0, 0.0, float(W), float(H))
    a0, _ = layer_boxes(plan, 0.0, W, H)
    _, b1 = layer_boxes(plan, 1.0, W, H)
    assert a0 == pytest.approx(full) and b1 == pytest.approx(full)
    m = plan.margin_fraction()
    for c in np.linspace(0, 1, 21):
        for x0, y0, x1, y1 in layer_boxes(plan, float(c), W, H):
            assert x0 >= -m * W - 1e-6 and y0 >= -m * H - 1e-6
            assert x1 <= W * (1 + m) + 1e-6 and y1 <= H * (1 + m) + 1e-6
            assert (x1 - x0) / (y1 - y0) == pytest.approx(W / H)


# ---------------------------------------------------------------- templates
def _template_frames(images, name, idx=(0, 75)):
    req = _req(images, last_image=None, template=name)
    return {i: f.copy() for i, f in enumerate(iter_frames(req)) if i in idx}


def test_templates_distinct_and_start_on_first_image(images):
    frames = {name: _template_frames(images, name) for name in TEMPLATES}
    first0 = frames[TEMPLATES[0]][0]
    for name in TEMPLATES:
        np.testing.assert_array_equal(frames[name][0], first0)   # frame 0 = first image
        assert _mae(frames[name][75], first0) > 4, name          # visibly transformed
    for i, a in enumerate(TEMPLATES):
        for b in TEMPLATES[i + 1:]:
            assert _mae(frames[a][75], frames[b][75]) > 3, (a, b)


def test_templates_deterministic(images):
    for name in TEMPLATES:
        a = _template_frames(images, name, idx=(40, 100))
        b = _template_frames(images, name, idx=(40, 100))
        for i in a:
            np.testing.assert_array_equal(a[i], b[i])


def test_template_clip_encodes_and_ignores_last_image(images, tmp_path):
    p1, p2 = tmp_path / "a.mp4", tmp_path / "b.mp4"
    render_clip(_req(images, template="mech1", last_image=None, watermark=True), p1)
    render_clip(_req(images, template="mech1", watermark=True), p2)  # last_image ignored
    assert p1.read_bytes() == p2.read_bytes()
    meta, frames = _decode(p1)
    assert len(frames) == 150 and tuple(meta["size"]) == (W, H)
    assert _mae(frames[0], _fitted(images["first"])) < 8


# ---------------------------------------------------------------- watermark
def test_watermark_only_touches_bottom_right(images):
    mark = watermark_for(W, H)
    assert mark.x0 >= W * 0.5 and mark.y0 >= H * 0.75 and mark.x1 <= W and mark.y1 <= H
    plain = [f.copy() for f in iter_frames(_req(images))]
    marked = [f.copy() for f in iter_frames(_req(images, watermark=True))]
    for i in (0, 75, 149):
        diff = [a != b for a, b in zip(_yuv(plain[i]), _yuv(marked[i]))]
        assert diff[0][mark.y0:mark.y1, mark.x0:mark.x1].sum() > 50
        outside = diff[0].copy()
        outside[mark.y0:mark.y1, mark.x0:mark.x1] = False
        assert not outside.any()
        for d in diff[1:]:
            d = d.copy()
            d[mark.y0 // 2:mark.y1 // 2, mark.x0 // 2:mark.x1 // 2] = False
            assert not d.any()


def test_watermark_survives_encoding(images, base_clip, tmp_path):
    out = tmp_path / "wm.mp4"
    render_clip(_req(images, watermark=True), out)
    _, marked = _decode(out)
    plain = base_clip["frames"]
    mark = watermark_for(W, H)
    region = (slice(None), slice(mark.y0, mark.y1), slice(mark.x0, mark.x1))
    assert _mae(marked[region], plain[region]) > 15
    rest = np.ones((H, W), bool)
    rest[max(0, mark.y0 - 16):, max(0, mark.x0 - 16):] = False   # allow codec spill near the mark
    assert _mae(marked[:, rest], plain[:, rest]) < 1.5


def test_watermark_scales_with_frame():
    small, big = watermark_for(960, 536), watermark_for(1920, 1072)
    ratio = (big.y1 - big.y0) / (small.y1 - small.y0)
    assert 1.7 < ratio < 2.3
    assert big.x1 <= 1920 and big.y1 <= 1072
    tiny = watermark_for(64, 64)  # still drawn, inside the frame
    assert 0 <= tiny.x0 < tiny.x1 <= 64 and 0 <= tiny.y0 < tiny.y1 <= 64


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kw",
    [
        {"seed": -1},
        {"seed": 2147483648},
        {"template": "squish"},
        {"last_image": None},
        {"width": 191},
        {"preset": "lightspeed"},
    ],
)
def test_bad_requests(images, tmp_path, kw):
    with pytest.raises(ValueError):
        render_clip(_req(images, **kw), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_undecodable_image(images, tmp_path):
    with pytest.raises(Exception):
        render_clip(_req(images, first_image=b"not an image"), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_atomic(images, tmp_path, monkeypatch):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")
    real = R._ffmpeg_cmd

    def broken(w, h, preset, path):
        cmd = real(w, h, preset, path)
        cmd[cmd.index("libx264")] = "no_such_encoder"
        return cmd

    monkeypatch.setattr(R, "_ffmpeg_cmd", broken)
    with pytest.raises(RenderError):
        render_clip(_req(images), out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_output_permissions(base_clip):
    assert os.stat(base_clip["path"]).st_mode & 0o644 == 0o644


def test_first_and_last_frames_of_different_aspect_ratios_render(tmp_path):
    """750x1000 first frame, 320x240 last frame at 720P: float error once made a negative crop box."""
    from fixtures.frames import frame_bytes
    from mock_server.media.render import RenderRequest, render_clip
    from mock_server.media.sizing import output_size
    from tests.media_checks import assert_clip

    first, last = frame_bytes(750, 1000, seed=1), frame_bytes(320, 240, seed=2)
    width, height = output_size(750, 1000, "720P")
    out = tmp_path / "clip.mp4"
    render_clip(RenderRequest(first, last, width, height, seed=3, preset="ultrafast"), out)
    assert_clip(out.read_bytes(), first=first, last=last, resolution="720P")
