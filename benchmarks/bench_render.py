#!/usr/bin/env python3
"""Time ``render_clip`` against bare ffmpeg encodes of the same two keyframes.

Not a test. For each tier (480P, 720P, 1080P) and each of N runs, interleaved
(runs in the outer loop so machine drift hits every configuration alike):

- ``render move``   : ``render_clip`` with a seeded camera move (the normal case)
- ``render static`` : ``render_clip`` with prompt "static camera" (plain cross-fade)
- ``floor yuv pipe``: bare cross-fade of the same fitted frames, uint16 blend on
                      yuv420p planes via ``imageio_ffmpeg.write_frames(pix_fmt_in=
                      "yuv420p")`` - the perf-notes recipe, i.e. the cost floor
- ``cli overlay``   : bare ffmpeg CLI ``fade``(alpha)+``overlay`` cross-fade of the
                      two fitted PNGs (perf-notes section 5 alternative)
- ``naive``         : ``imageio_ffmpeg.write_frames`` with its defaults (preset
                      medium, rgb24) and a float RGB cross-fade - the perf-notes
                      "naive baseline"

All but ``naive`` use the same preset (default: render's default) and CRF 25.
Prints the medians and the ratio of ``render move`` to each bare encode.

    /tmp/venv/bin/python benchmarks/bench_render.py [--runs 3] [--preset veryfast] [--no-naive] [--keep]
"""
from __future__ import annotations

import argparse
import io
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mock_server.media.render import (  # noqa: E402
    CRF,
    DEFAULT_PRESET,
    FPS,
    NUM_FRAMES,
    RenderRequest,
    render_clip,
)
from mock_server.media.sizing import output_size  # noqa: E402
from mock_server.media.yuv import decode_image, fit_cover, rgb_to_yuv420p  # noqa: E402

TIERS = ("480P", "720P", "1080P")


def photo_like(w: int, h: int, seed: int) -> bytes:
    """Gradients, 12 random shapes, some text and sigma=6 noise (as in perf-notes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c = rng.uniform(0, 255, (3, 3))
    base = np.stack([c[i, 0] + (c[i, 1] - c[i, 0]) * xx / w + (c[i, 2] - 128) * yy / h * 0.5
                     for i in range(3)], -1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, x0 + int(rng.integers(w // 12, w // 3)), y0 + int(rng.integers(h // 12, h // 3))]
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=col)
    font = ImageFont.load_default(size=max(12, h // 12))
    d.text((w // 10, h // 2), f"kf2v bench {seed}", fill=(255, 255, 255), font=font)
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 6, (h, w, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=92)
    return out.getvalue()


def floor_yuv_pipe(a_rgb: np.ndarray, b_rgb: np.ndarray, path: str, preset: str) -> None:
    h, w, _ = a_rgb.shape
    a = np.concatenate([p.ravel() for p in rgb_to_yuv420p(a_rgb)])
    b = np.concatenate([p.ravel() for p in rgb_to_yuv420p(b_rgb)])
    acc = np.empty(a.shape, np.uint16)
    tmp = np.empty(a.shape, np.uint16)
    out = np.empty(a.shape, np.uint8)
    gen = imageio_ffmpeg.write_frames(path, (w, h), pix_fmt_in="yuv420p", fps=FPS, quality=None,
                                      macro_block_size=1,
                                      output_params=["-crf", str(CRF), "-preset", preset,
                                                     "-movflags", "+faststart"])
    gen.send(None)
    for i in range(NUM_FRAMES):
        k = round(256 * i / (NUM_FRAMES - 1))
        np.multiply(a, 256 - k, out=acc, dtype=np.uint16)
        np.multiply(b, k, out=tmp, dtype=np.uint16)
        acc += tmp
        acc += 128
        acc >>= 8
        np.copyto(out, acc, casting="unsafe")
        gen.send(out)
    gen.close()


def naive(a_rgb: np.ndarray, b_rgb: np.ndarray, path: str) -> None:
    h, w, _ = a_rgb.shape
    gen = imageio_ffmpeg.write_frames(path, (w, h), fps=FPS)  # defaults: medium, rgb24
    gen.send(None)
    for i in range(NUM_FRAMES):
        t = i / (NUM_FRAMES - 1)
        frame = (a_rgb.astype(np.float32) * (1 - t) + b_rgb.astype(np.float32) * t)
        gen.send(np.ascontiguousarray(np.rint(frame).astype(np.uint8)))
    gen.close()


def cli_overlay(a_png: str, b_png: str, path: str, preset: str) -> None:
    dur = (NUM_FRAMES - 1) / FPS
    graph = (f"[0:v]format=yuv420p,loop=loop={NUM_FRAMES - 1}:size=1:start=0,setpts=N/{FPS}/TB[a];"
             f"[1:v]format=yuva420p,loop=loop={NUM_FRAMES - 1}:size=1:start=0,setpts=N/{FPS}/TB,"
             f"fade=t=in:st=0:d={dur:.6f}:alpha=1[b];[a][b]overlay=format=yuv420[v]")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
           "-framerate", str(FPS), "-i", a_png, "-framerate", str(FPS), "-i", b_png,
           "-filter_complex", graph, "-map", "[v]", "-frames:v", str(NUM_FRAMES), "-r", str(FPS),
           "-c:v", "libx264", "-preset", preset, "-crf", str(CRF), "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", "-y", path]
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--tiers", nargs="+", default=list(TIERS), choices=TIERS)
    ap.add_argument("--no-naive", action="store_true", help="skip the slow naive baseline")
    ap.add_argument("--keep", action="store_true", help="keep the encoded files (printed path)")
    args = ap.parse_args()

    first, last = photo_like(1600, 900, 1), photo_like(1200, 900, 2)
    work = tempfile.mkdtemp(prefix="bench_render_")
    cases: dict[str, dict] = {}
    for tier in args.tiers:
        w, h = output_size(1600, 900, tier)
        a = np.asarray(fit_cover(decode_image(first), w, h))
        b = np.asarray(fit_cover(decode_image(last), w, h))
        a_png, b_png = os.path.join(work, f"{tier}_a.png"), os.path.join(work, f"{tier}_b.png")
        Image.fromarray(a).save(a_png, compress_level=1)
        Image.fromarray(b).save(b_png, compress_level=1)
        cases[tier] = dict(size=(w, h), a=a, b=b, a_png=a_png, b_png=b_png)

    configs = ["render move", "render static", "floor yuv pipe", "cli overlay"]
    if not args.no_naive:
        configs.append("naive")
    times: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], int] = {}

    def run(tier: str, cfg: str) -> None:
        c = cases[tier]
        w, h = c["size"]
        out = os.path.join(work, f"{tier}_{cfg.replace(' ', '_')}.mp4")
        t0 = time.perf_counter()
        if cfg == "render move":
            render_clip(RenderRequest(first, last, w, h, seed=42, preset=args.preset), out)
        elif cfg == "render static":
            render_clip(RenderRequest(first, last, w, h, seed=42, prompt="static camera",
                                      preset=args.preset), out)
        elif cfg == "floor yuv pipe":
            floor_yuv_pipe(c["a"], c["b"], out, args.preset)
        elif cfg == "cli overlay":
            cli_overlay(c["a_png"], c["b_png"], out, args.preset)
        else:
            naive(c["a"], c["b"], out)
        times.setdefault((tier, cfg), []).append(time.perf_counter() - t0)
        sizes[(tier, cfg)] = os.path.getsize(out)

    for tier in args.tiers:  # warm-up (imports, page cache, first ffmpeg start)
        run(tier, "render move")
    times.clear()
    for r in range(args.runs):
        for tier in args.tiers:
            for cfg in configs:
                run(tier, cfg)
        print(f"run {r + 1}/{args.runs} done", file=sys.stderr)

    print(f"\nmedian of {args.runs} runs, preset {args.preset} (naive: write_frames defaults), "
          f"CRF {CRF}, {os.cpu_count()} CPUs\n")
    head = "| config | " + " | ".join(f"{t} {cases[t]['size'][0]}x{cases[t]['size'][1]}" for t in args.tiers) + " |"
    print(head)
    print("|" + "---|" * (len(args.tiers) + 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    for cfg in configs:
        cells = [f"{med[(t, cfg)]:.2f} s ({sizes[(t, cfg)] / 1e6:.2f} MB)" for t in args.tiers]
        print(f"| {cfg} | " + " | ".join(cells) + " |")
    for cfg in configs[1:]:
        cells = [f"{med[(t, 'render move')] / med[(t, cfg)]:.2f}x" for t in args.tiers]
        print(f"| render move / {cfg} | " + " | ".join(cells) + " |")
    if args.keep:
        print(f"\n(files left in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
