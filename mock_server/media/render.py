"""Offline clip synthesis for kf2v-mock.

``render_clip(RenderRequest(...), out_path)`` writes a 5.000 s, 30 fps, 150-frame
H.264 (libx264, yuv420p, BT.709 limited range, CRF 25) MP4 with ``+faststart``
and no audio, exactly ``width`` x ``height``.

Keyframe mode (``last_image`` given): frame 0 is the first image, frame 149 the
last image (both fitted to the output size: scale to cover, centre-crop), and
the frames in between are a seeded cross-fade under a gentle camera move whose
direction comes from the prompt or, failing that, the seed (see ``motion.py``).

Template mode (``template`` given, ``last_image`` ignored): a deterministic,
per-template motion/colour effect of the first image (see ``templates.py``).

``watermark=True`` draws "AI生成" bottom-right on every frame (``watermark.py``).

How it stays cheap (shared/spec/perf-notes.md, "yuv420p pipe recipe"):
- ffmpeg is started first, so its start-up overlaps the image decoding;
- both images are decoded, fitted and converted to yuv420p planes once
  (fixed-point integer maths);
- camera moves sample a 2x up-sampled copy of the planes with Pillow's
  nearest-neighbour resize (quarter-pixel accurate, about a copy's cost);
- the cross-fade is the uint16 integer blend ``(a*(256-k) + b*k + 128) >> 8``
  straight from the sampled planes into one preallocated frame;
- one frame at a time goes down the pipe as raw yuv420p (never the whole clip).

The function is synchronous and keeps no global mutable state apart from a
small per-size watermark cache (``functools.lru_cache``, thread-safe), so it can
run in a thread (the heavy parts - ffmpeg, pipe writes, Pillow resizes -
release the GIL) or in a process pool (``RenderRequest`` is a picklable frozen
dataclass of plain values).

The output file appears atomically: ffmpeg writes ``.<name>.<random>.part.mp4``
in the same directory, which is ``os.replace``-d onto ``out_path`` only after a
clean exit; on any failure it is removed and the error re-raised.

Same request => byte-identical file (bitexact muxing, no metadata, deterministic
x264 with a thread count fixed per output size (``x264_threading``), so the core count
of the machine does not matter; integer colour conversion and blending).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import imageio_ffmpeg
import numpy as np

from .motion import MovePlan, camera_progress, fade_weight, layer_boxes, plan_move
from .templates import TEMPLATES, make_effect
from .watermark import watermark_for
from .yuv import PlaneSampler, decode_image, fit_cover, rgb_to_yuv420p

FPS = 30
NUM_FRAMES = 150
DURATION_S = NUM_FRAMES / FPS
CRF = 25
DEFAULT_PRESET = "veryfast"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast",
                "medium", "slow", "slower", "veryslow", "placebo")
SEED_MAX = 2147483647

__all__ = ["RenderRequest", "render_clip", "iter_frames", "request_digest", "X264_PRESETS",
           "TEMPLATES", "FPS", "NUM_FRAMES", "DURATION_S", "DEFAULT_PRESET", "RenderError"]


class RenderError(RuntimeError):
    """ffmpeg failed; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class RenderRequest:
    first_image: bytes          # encoded image file bytes (JPEG/PNG/BMP/WEBP), validated by caller
    last_image: bytes | None    # None when an effect template is used
    width: int                  # output size, multiples of 16 (from sizing.output_size)
    height: int
    seed: int                   # 0..2147483647
    prompt: str = ""            # may steer the camera move
    template: str | None = None  # hanfu-1, solaron, magazine, mech1, mech2
    watermark: bool = False
    preset: str = DEFAULT_PRESET  # x264 preset; tests use "ultrafast"


# Bump whenever the same request would give other bytes (the clip cache keys on it).
RENDER_FORMAT = 2


def request_digest(req: RenderRequest) -> str:
    """A hex SHA-256 naming the clip ``req`` renders to: equal digests, equal bytes (same
    renderer format and ffmpeg build)."""
    digest = hashlib.sha256()
    for part in (f"kf2v-clip/{RENDER_FORMAT}", os.path.basename(imageio_ffmpeg.get_ffmpeg_exe()),
                 req.width, req.height, req.seed, req.prompt, req.template, req.watermark,
                 req.preset, req.first_image, req.last_image):
        data = b"b" + part if isinstance(part, bytes) else b"r" + repr(part).encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _validate(req: RenderRequest) -> None:
    if not isinstance(req.width, int) or not isinstance(req.height, int):
        raise TypeError("width and height must be int")
    if req.width < 16 or req.height < 16 or req.width % 2 or req.height % 2:
        raise ValueError(f"output size must be even and >= 16, got {req.width}x{req.height}")
    if not isinstance(req.seed, int) or not 0 <= req.seed <= SEED_MAX:
        raise ValueError(f"seed must be an int in [0, {SEED_MAX}], got {req.seed!r}")
    if req.template is not None and req.template not in TEMPLATES:
        raise ValueError(f"unknown template {req.template!r}; known: {', '.join(TEMPLATES)}")
    if req.template is None and req.last_image is None:
        raise ValueError("last_image is required unless a template is used")
    if req.preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {req.preset!r}")


def _load_planes(data: bytes, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = fit_cover(decode_image(data, cover=(w, h)), w, h)
    return rgb_to_yuv420p(np.asarray(img))


class _FrameBuffer:
    """One flat yuv420p frame plus 2-D views of its planes."""

    def __init__(self, w: int, h: int) -> None:
        self.flat = np.empty(w * h * 3 // 2, np.uint8)
        ys, cs = w * h, (w // 2) * (h // 2)
        self.y = self.flat[:ys].reshape(h, w)
        self.u = self.flat[ys:ys + cs].reshape(h // 2, w // 2)
        self.v = self.flat[ys + cs:].reshape(h // 2, w // 2)

    @property
    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.y, self.u, self.v


class _FrameBuffer16(_FrameBuffer):
    """The same planes in uint16 (blend scratch)."""

    def __init__(self, w: int, h: int) -> None:
        self.flat = np.empty(w * h * 3 // 2, np.uint16)
        ys, cs = w * h, (w // 2) * (h // 2)
        self.y = self.flat[:ys].reshape(h, w)
        self.u = self.flat[ys:ys + cs].reshape(h // 2, w // 2)
        self.v = self.flat[ys + cs:].reshape(h // 2, w // 2)


def _keyframe_frames(req: RenderRequest, plan: MovePlan,
                     first: PlaneSampler, last: PlaneSampler) -> Iterator[_FrameBuffer]:
    w, h = req.width, req.height
    out = _FrameBuffer(w, h)
    # uint16 scratch with the frame's plane shapes: the blend reads the samplers' planes directly
    acc, tmp = _FrameBuffer16(w, h), _FrameBuffer16(w, h)
    for i in range(NUM_FRAMES):
        t = i / (NUM_FRAMES - 1)
        k = int(round(256 * fade_weight(plan, t)))
        box_a, box_b = layer_boxes(plan, camera_progress(t), w, h)
        if k <= 0:
            first.render(box_a, *out.planes)
        elif k >= 256:
            last.render(box_b, *out.planes)
        else:
            for a, b, dst, s, u in zip(first.planes(box_a), last.planes(box_b), out.planes,
                                       acc.planes, tmp.planes):
                # (a*(256-k) + b*k + 128) >> 8: cannot overflow uint16 (255*256+128 < 65536)
                np.multiply(a, 256 - k, out=s, dtype=np.uint16)
                np.multiply(b, k, out=u, dtype=np.uint16)
                s += u
                s += 128
                s >>= 8
                np.copyto(dst, s, casting="unsafe")
        yield out


def _template_frames(req: RenderRequest, first: PlaneSampler) -> Iterator[_FrameBuffer]:
    assert req.template is not None
    out = _FrameBuffer(req.width, req.height)
    effect = make_effect(req.template, first, req.seed, NUM_FRAMES)
    for i in range(NUM_FRAMES):
        effect.render(i, *out.planes)
        yield out


def iter_frames(req: RenderRequest) -> Iterator[np.ndarray]:
    """Yield the clip's 150 frames as flat yuv420p ``uint8`` arrays (Y, then U, then V).

    The SAME buffer is reused for every frame: copy it if you keep it.
    """
    _validate(req)
    w, h = req.width, req.height
    fy, fu, fv = _load_planes(req.first_image, w, h)
    if req.template is not None:
        frames = _template_frames(req, PlaneSampler(fy, fu, fv))
    else:
        assert req.last_image is not None
        ly, lu, lv = _load_planes(req.last_image, w, h)
        plan = plan_move(req.prompt, req.seed)
        frac = plan.margin_fraction()
        mx, my = int(np.ceil(w * frac)) + 4, int(np.ceil(h * frac)) + 4
        frames = _keyframe_frames(req, plan, PlaneSampler(fy, fu, fv, mx, my),
                                  PlaneSampler(ly, lu, lv, mx, my))
    mark = watermark_for(w, h) if req.watermark else None
    for fb in frames:
        if mark is not None:
            mark.apply(*fb.planes)
        yield fb.flat


# x264 threading per output size, fixed so the bitstream never depends on the machine's core
# count (x264's own choice would): frame threads as x264 picks them on a 2-core machine
# (perf-notes 1.3) up to 720P; above that, two sliced threads and a short lookahead, which keep
# the encoder's memory for a 1080P clip about 130 MB lower at about the same speed.
_LARGE_FRAME = 1280 * 720 * 5 // 4
_X264_SMALL = ["-threads", "3"]
_X264_LARGE = ["-threads", "2", "-x264-params", "sliced-threads=1:rc-lookahead=5"]


def x264_threading(w: int, h: int) -> list[str]:
    return _X264_LARGE if w * h > _LARGE_FRAME else _X264_SMALL


def _ffmpeg_cmd(w: int, h: int, preset: str, path: str) -> list[str]:
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner", "-nostats", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-framerate", str(FPS),
        # colour tags on the input side: ffmpeg 9 takes the encoder's VUI from
        # the frames, so output-side -color_* options would be overridden
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
        "-color_range", "tv",
        "-i", "pipe:0",
        "-an", "-sn", "-dn",
        "-frames:v", str(NUM_FRAMES),
        "-c:v", "libx264", "-preset", preset, "-crf", str(CRF), "-pix_fmt", "yuv420p",
        *x264_threading(w, h),
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-movflags", "+faststart",
        "-f", "mp4", "-y", path,
    ]


def _grow_pipe(fd: int) -> None:
    """Ask Linux for a 1 MiB pipe buffer (perf-notes 2.2); harmless elsewhere."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass


def render_clip(req: RenderRequest, out_path: str | os.PathLike[str], *,
                child_setup: Callable[[], None] | None = None) -> None:
    """Render ``req`` to an MP4 at ``out_path`` (atomically replaced on success).

    Raises ``ValueError``/``TypeError`` for a bad request, the Pillow error for an
    undecodable image, and ``RenderError`` if ffmpeg fails. ``child_setup`` runs in the
    ffmpeg child before it starts (``subprocess``'s ``preexec_fn``: only for a caller with
    no other threads, such as a render worker process).
    """
    _validate(req)
    out_path = os.fspath(out_path)
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out_path) + ".",
                               suffix=".part.mp4", dir=directory)
    os.close(fd)
    ok = False
    try:
        with tempfile.TemporaryFile() as err:
            # ffmpeg starts while the images are decoded (its start-up overlaps ours).
            proc = subprocess.Popen(_ffmpeg_cmd(req.width, req.height, req.preset, tmp),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=err, preexec_fn=child_setup)
            frames = iter_frames(req)
            try:
                assert proc.stdin is not None
                _grow_pipe(proc.stdin.fileno())
                broken = False
                try:
                    for frame in frames:
                        proc.stdin.write(memoryview(frame))
                    proc.stdin.close()
                except BrokenPipeError:
                    broken = True
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                frames.close()
                if proc.stdin is not None and not proc.stdin.closed:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass
            if rc != 0 or broken:
                err.seek(0)
                tail = err.read()[-4000:].decode("utf-8", "replace").strip()
                raise RenderError(f"ffmpeg exited with {rc}: {tail or 'no output'}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
        ok = True
    finally:
        if not ok:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
