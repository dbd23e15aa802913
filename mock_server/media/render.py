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
- the cross-fade is Pillow's one-pass blend of the two sampled images with alpha ``k/256``,
  which is exactly the integer ``(a*(256-k) + b*k) >> 8`` (see ``_keyframe_frames``);
- one frame at a time goes down the pipe as raw yuv420p (never the whole clip), at most
  ``FRAMES_AHEAD`` frames ahead of those ffmpeg reports encoded.

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

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import imageio_ffmpeg
import numpy as np
from PIL import Image

from .clip_request import (DEFAULT_PRESET, DURATION_S, FPS, NUM_FRAMES, TEMPLATES, X264_PRESETS,
                           RenderError, RenderRequest, request_digest, validate)
from .motion import MovePlan, camera_progress, fade_weight, layer_boxes, plan_move
from .templates import make_effect
from .watermark import watermark_for
from .yuv import PlaneSampler, decode_image, fit_cover, rgb_to_yuv420p

CRF = 25

__all__ = ["RenderRequest", "render_clip", "iter_frames", "request_digest", "X264_PRESETS",
           "TEMPLATES", "FPS", "NUM_FRAMES", "DURATION_S", "DEFAULT_PRESET", "RenderError"]


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


def _keyframe_frames(req: RenderRequest, plan: MovePlan,
                     first: PlaneSampler, last: PlaneSampler) -> Iterator[_FrameBuffer]:
    w, h = req.width, req.height
    out = _FrameBuffer(w, h)
    for i in range(NUM_FRAMES):
        t = i / (NUM_FRAMES - 1)
        k = int(round(256 * fade_weight(plan, t)))
        box_a, box_b = layer_boxes(plan, camera_progress(t), w, h)
        if k <= 0:
            first.render(box_a, *out.planes)
        elif k >= 256:
            last.render(box_b, *out.planes)
        else:
            for a, b, dst in zip(first.images(box_a), last.images(box_b), out.planes):
                # Pillow computes a + alpha*(b - a) in float and truncates. With alpha = k/256
                # every product and sum is exact in a float, fused or not, so this is the
                # integer (a*(256-k) + b*k) >> 8 on every machine, in one pass.
                np.copyto(dst, np.asarray(Image.blend(a, b, k / 256)))
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
    validate(req)
    w, h = req.width, req.height
    # The samplers own the planes (no locals here keep a second reference for the whole clip).
    if req.template is not None:
        frames = _template_frames(req, PlaneSampler(*_load_planes(req.first_image, w, h)))
    else:
        assert req.last_image is not None
        plan = plan_move(req.prompt, req.seed)
        frac = plan.margin_fraction()
        mx, my = int(np.ceil(w * frac)) + 4, int(np.ceil(h * frac)) + 4
        frames = _keyframe_frames(
            req, plan, PlaneSampler(*_load_planes(req.first_image, w, h), mx, my),
            PlaneSampler(*_load_planes(req.last_image, w, h), mx, my))
    mark = watermark_for(w, h) if req.watermark else None
    for fb in frames:
        if mark is not None:
            mark.apply(*fb.planes)
        yield fb.flat


# x264 threading per output size, fixed so the bitstream never depends on the machine's core
# count (x264's own choice would): frame threads as x264 picks them on a 2-core machine
# (perf-notes 1.3) up to 720P. Above that, two sliced threads, a one-frame lookahead and one
# B-frame: ffmpeg peaks at about 165 MB for a 1080P clip fed at full speed (210 MB with a
# 5-frame lookahead and the preset's 3 B-frames; 270 MB with frame threads even when fed slowly),
# at about the same speed, into a file about a quarter smaller with 0.7 dB less PSNR.
_LARGE_FRAME = 1280 * 720 * 5 // 4
_X264_SMALL = ["-threads", "3"]
_X264_LARGE = ["-threads", "2", "-x264-params", "sliced-threads=1:rc-lookahead=1:bframes=1"]


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


# Frames written ahead of those x264 has encoded, above 720P. ffmpeg reads its input as fast as it
# comes and queues raw frames between its threads: unpaced, a 1080P encode held about 50 MB of
# waiting frames. Twelve ahead keep x264 fed: with _X264_LARGE's one-frame lookahead, one B-frame
# and sliced threads it holds back about 4 frames whatever the preset. (Smaller sizes are not
# paced: their frame threads and the preset's lookahead hold back up to 60 frames, and the queued
# frames are small.)
FRAMES_AHEAD = 12
_PROGRESS = ["-progress", "pipe:1", "-stats_period", "0.05"]
_PROGRESS_PATIENCE_S = 2.0  # the count has not moved for this long: stop pacing, never deadlock


class _EncodedFrames:
    """How many frames ffmpeg reports encoded (``-progress`` on its stdout)."""

    def __init__(self, stream, pacing: bool) -> None:
        self.fd = stream.fileno()
        self.count = 0
        self.pacing = pacing
        self._partial = b""

    def wait_for(self, count: int) -> None:
        """Block until ``count`` frames are encoded, or give up pacing for good if ffmpeg ends
        or its count stops moving (an encoder that holds back more frames than we thought)."""
        if not self.pacing or self.count >= count:
            return
        deadline = time.monotonic() + _PROGRESS_PATIENCE_S
        while self.count < count:
            before = self.count
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready or not self._read():
                self.pacing = False
                return
            if self.count > before:
                deadline = time.monotonic() + _PROGRESS_PATIENCE_S

    def drain(self) -> None:
        while self._read():
            pass

    def _read(self) -> bool:
        data = os.read(self.fd, 65536)
        if not data:
            return False
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.startswith(b"frame="):
                try:
                    self.count = int(line[6:])
                except ValueError:
                    pass
        return True


def render_clip(req: RenderRequest, out_path: str | os.PathLike[str], *,
                child_setup: Callable[[], None] | None = None) -> None:
    """Render ``req`` to an MP4 at ``out_path`` (atomically replaced on success).

    Raises ``ValueError``/``TypeError`` for a bad request, the Pillow error for an
    undecodable image, and ``RenderError`` if ffmpeg fails. ``child_setup`` runs in the
    ffmpeg child before it starts (``subprocess``'s ``preexec_fn``: only for a caller with
    no other threads, such as a render worker process).
    """
    validate(req)
    out_path = os.fspath(out_path)
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out_path) + ".",
                               suffix=".part.mp4", dir=directory)
    os.close(fd)
    ok = False
    try:
        with tempfile.TemporaryFile() as err:
            # ffmpeg starts while the images are decoded (its start-up overlaps ours).
            cmd = _ffmpeg_cmd(req.width, req.height, req.preset, tmp)
            proc = subprocess.Popen(cmd[:1] + _PROGRESS + cmd[1:],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, preexec_fn=child_setup)
            frames = iter_frames(req)
            try:
                assert proc.stdin is not None and proc.stdout is not None
                _grow_pipe(proc.stdin.fileno())
                encoded = _EncodedFrames(
                    proc.stdout, pacing=x264_threading(req.width, req.height) is _X264_LARGE)
                broken = False
                try:
                    for number, frame in enumerate(frames):
                        encoded.wait_for(number - FRAMES_AHEAD)
                        proc.stdin.write(memoryview(frame))
                    proc.stdin.close()
                except BrokenPipeError:
                    broken = True
                encoded.drain()
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                frames.close()
                for stream in (proc.stdin, proc.stdout):
                    if stream is not None and not stream.closed:
                        try:
                            stream.close()
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
