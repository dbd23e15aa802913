#!/usr/bin/env python3
"""Peak memory of one 1080P ``render_clip`` next to a baseline that holds all 150 frames.

Not a test. Each configuration runs in its own child process (so its peak RSS is its own), the two
interleaved for ``--runs`` rounds; prints the medians and their ratio. The renderer streams frames to
ffmpeg one at a time, so its peak stays a small fraction of the hold-everything baseline.

    python benchmarks/bench_render_memory.py [--runs 3] [--resolution 1080P]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, os
sys.path.insert(0, {root!r})
import imageio_ffmpeg
from fixtures.frames import frame_bytes
from mock_server.media.render import RenderRequest, iter_frames, render_clip
from mock_server.media.sizing import output_size
w, h = output_size(1920, 1080, {resolution!r})
req = RenderRequest(frame_bytes(1920, 1080, 1), frame_bytes(1920, 1080, 2), w, h, seed=3,
                    preset="ultrafast")
out = os.path.join({tmp!r}, "clip.mp4")
if {mode!r} == "stream":
    render_clip(req, out)
else:  # baseline: every frame in memory first, then one encode
    frames = [bytes(f) for f in iter_frames(req)]
    writer = imageio_ffmpeg.write_frames(out, (w, h), pix_fmt_in="yuv420p", macro_block_size=1,
                                         output_params=["-preset", "ultrafast"])
    writer.send(None)
    for f in frames:
        writer.send(f)
    writer.close()
"""


def peak_rss_mb(mode: str, resolution: str, tmp: str) -> float:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = CHILD.format(root=root, resolution=resolution, tmp=tmp, mode=mode)
    process = subprocess.Popen([sys.executable, "-c", code])
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode} child failed ({status})")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--resolution", default="1080P")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"stream": [], "hold all frames": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            results["stream"].append(peak_rss_mb("stream", args.resolution, tmp))
            results["hold all frames"].append(peak_rss_mb("hold", args.resolution, tmp))
    medians = {k: statistics.median(v) for k, v in results.items()}
    print(f"peak RSS of one {args.resolution} clip (the larger of the Python process and its "
          f"ffmpeg), median of {args.runs} runs")
    for name, value in medians.items():
        print(f"  {name:16s} {value:8.1f} MB")
    print(f"  ratio stream / hold all frames: {medians['stream'] / medians['hold all frames']:.2f}x")


if __name__ == "__main__":
    main()
