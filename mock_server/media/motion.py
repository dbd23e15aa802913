"""Camera moves for the keyframe transition.

A move is described per layer (first image "A", last image "B") as a crop box
in that image's own pixel coordinates, as a function of the camera progress
``c`` in [0, 1]. The box is resampled to the full output frame, so a box smaller
than the frame zooms in and a box larger than the frame (or one partly outside
it) needs the mirror-padded margin that the renderer keeps around each image.

Both layers follow one virtual camera:
- A's box is the full frame at c=0, B's box is the full frame at c=1, so the
  clip starts exactly on the first image and ends exactly on the last one.
- zoom_in / zoom_out: a constant-rate zoom about the centre, continuous across
  the cross-fade (B starts zoomed out by the same factor A ends zoomed in).
  The part of a box outside its image shows mirrored content; it is at most
  ``(zoom-1)/2`` of the frame per side and only while that layer is faint.
- pan_left / pan_right / rise / descend: the box slides towards one side and
  stays inside the image. A's box keeps the far edge fixed and shrinks (slight
  push-in), B's box keeps the near edge fixed and grows (slight pull-out), so the
  content at the frame centre moves at the same speed in both layers.
- static: no camera move (plain cross-fade).

The direction comes from the prompt (zh/en camera vocabulary, earliest match
wins); without a match it is drawn from the seed. The seed always sets the
amplitude and the cross-fade timing, so different seeds give different clips.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "rise", "descend", "static")

# Moves drawn from the seed when the prompt names none (no "static": the mock
# should visibly move).
_SEEDED_MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "rise", "descend")

# Keyword -> move. Chinese keywords match as substrings, English ones as whole
# words / phrases (case-insensitive). Among all matches the earliest position
# in the prompt wins; at equal position the longer keyword wins.
_ZH_KEYWORDS: dict[str, tuple[str, ...]] = {
    "static": ("固定镜头", "镜头固定", "静止镜头", "镜头静止", "镜头不动"),
    "zoom_in": ("推进", "推近", "推镜", "拉近", "靠近", "前推", "放大", "特写", "逼近"),
    "zoom_out": ("拉远", "拉开", "后拉", "后退", "远离", "缩小", "拉出", "远景"),
    "pan_left": ("左移", "向左", "往左", "左摇", "左转", "左平移", "左"),
    "pan_right": ("右移", "向右", "往右", "右摇", "右转", "右平移", "右"),
    "rise": ("上升", "升起", "上移", "向上", "往上", "上摇", "升高", "仰拍", "仰视", "起飞"),
    "descend": ("下降", "下移", "向下", "往下", "下摇", "俯拍", "俯视", "俯冲", "降落"),
}
_EN_KEYWORDS: dict[str, tuple[str, ...]] = {
    "static": ("static camera", "static shot", "fixed camera", "locked camera",
               "no camera movement", "camera stays still"),
    "zoom_in": ("zoom in", "zooms in", "zooming in", "push in", "pushes in", "pushing in",
                "dolly in", "move closer", "moves closer", "moving closer", "close up",
                "close-up", "closeup", "approach", "approaches", "approaching"),
    "zoom_out": ("zoom out", "zooms out", "zooming out", "pull back", "pulls back",
                 "pulling back", "pull out", "pulls out", "dolly out", "move away",
                 "moves away", "moving away", "wide shot", "reveal", "reveals"),
    "pan_left": ("pan left", "pans left", "panning left", "truck left", "move left",
                 "moves left", "moving left", "to the left", "leftward", "leftwards"),
    "pan_right": ("pan right", "pans right", "panning right", "truck right", "move right",
                  "moves right", "moving right", "to the right", "rightward", "rightwards"),
    "rise": ("rise", "rises", "rising", "ascend", "ascends", "ascending", "crane up",
             "cranes up", "tilt up", "tilts up", "tilting up", "upward", "upwards",
             "move up", "moves up", "moving up", "low angle", "low-angle"),
    "descend": ("descend", "descends", "descending", "crane down", "cranes down",
                "tilt down", "tilts down", "tilting down", "downward", "downwards",
                "move down", "moves down", "moving down", "top-down", "top down",
                "overhead", "bird's-eye", "birds-eye", "bird's eye", "aerial"),
}


def _build_patterns() -> list[tuple[re.Pattern[str], str, int]]:
    pats: list[tuple[re.Pattern[str], str, int]] = []
    for move, words in _ZH_KEYWORDS.items():
        for w in words:
            pats.append((re.compile(re.escape(w)), move, len(w)))
    for move, words in _EN_KEYWORDS.items():
        for w in words:
            body = r"[\s\-]+".join(re.escape(p) for p in re.split(r"[\s\-]+", w))
            pats.append((re.compile(r"(?<![A-Za-z])" + body + r"(?![A-Za-z])", re.IGNORECASE),
                         move, len(w)))
    return pats


_PATTERNS = _build_patterns()


def move_from_prompt(prompt: str | None) -> str | None:
    """Return the camera move named in ``prompt`` or ``None`` if it names none."""
    if not prompt:
        return None
    best: tuple[int, int, str] | None = None
    for pat, move, length in _PATTERNS:
        m = pat.search(prompt)
        if m is None:
            continue
        key = (m.start(), -length, move)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


@dataclass(frozen=True)
class MovePlan:
    """Everything that shapes the transition, fixed per request."""

    move: str
    zoom: float          # zoom factor for zoom_in/zoom_out (>1)
    shift: float         # fraction of the frame a pan/rise/descend travels
    fade_start: float    # cross-fade window in t (clip time 0..1)
    fade_end: float

    def margin_fraction(self) -> float:
        """Largest fraction of the frame size a box may extend past one image edge."""
        if self.move in ("zoom_in", "zoom_out"):
            return (self.zoom - 1.0) / 2.0
        return 0.0


def plan_move(prompt: str | None, seed: int) -> MovePlan:
    """Pick the move (prompt first, else seed) and the seeded amplitudes/timing."""
    rng = random.Random(0x6B66_3276 ^ (int(seed) & 0xFFFF_FFFF))
    seeded_move = _SEEDED_MOVES[rng.randrange(len(_SEEDED_MOVES))]
    zoom = rng.uniform(1.10, 1.18)
    shift = rng.uniform(0.045, 0.07)
    centre = rng.uniform(0.42, 0.58)
    width = rng.uniform(0.6, 0.84)
    fade_start = max(0.0, centre - width / 2)
    fade_end = min(1.0, centre + width / 2)
    move = move_from_prompt(prompt) or seeded_move
    return MovePlan(move=move, zoom=zoom, shift=shift, fade_start=fade_start, fade_end=fade_end)


def smoothstep(x: float) -> float:
    x = 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
    return x * x * (3.0 - 2.0 * x)


def camera_progress(t: float) -> float:
    """Eased camera progress: starts and stops gently, exact 0 and 1 at the ends."""
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, t)))


def fade_weight(plan: MovePlan, t: float) -> float:
    """Weight of the last image at clip time ``t`` (0 at t=0, 1 at t=1)."""
    if t <= plan.fade_start:
        return 0.0
    if t >= plan.fade_end:
        return 1.0
    return smoothstep((t - plan.fade_start) / (plan.fade_end - plan.fade_start))


Box = tuple[float, float, float, float]


def _centred(w: int, h: int, bw: float, bh: float) -> Box:
    x0 = (w - bw) / 2.0
    y0 = (h - bh) / 2.0
    return (x0, y0, x0 + bw, y0 + bh)


def layer_boxes(plan: MovePlan, c: float, w: int, h: int) -> tuple[Box, Box]:
    """Crop boxes of layer A (first image) and B (last image) at camera progress ``c``."""
    m = plan.move
    if m == "static":
        full = (0.0, 0.0, float(w), float(h))
        return full, full
    if m in ("zoom_in", "zoom_out"):
        z = plan.zoom if m == "zoom_in" else 1.0 / plan.zoom
        sa = z ** c          # A: 1 -> z
        sb = z ** (c - 1.0)  # B: 1/z -> 1
        return _centred(w, h, w / sa, h / sa), _centred(w, h, w / sb, h / sb)
    p = plan.shift
    fa = 1.0 - 2.0 * p * c          # A's box shrinks towards the far edge
    fb = 1.0 - 2.0 * p * (1.0 - c)  # B's box grows from the near edge
    if m == "pan_right":            # camera moves right: content slides left
        a = (w * (1.0 - fa), (h - h * fa) / 2.0, float(w), (h + h * fa) / 2.0)
        b = (0.0, (h - h * fb) / 2.0, w * fb, (h + h * fb) / 2.0)
    elif m == "pan_left":
        a = (0.0, (h - h * fa) / 2.0, w * fa, (h + h * fa) / 2.0)
        b = (w * (1.0 - fb), (h - h * fb) / 2.0, float(w), (h + h * fb) / 2.0)
    elif m == "rise":               # camera moves up: content slides down
        a = ((w - w * fa) / 2.0, 0.0, (w + w * fa) / 2.0, h * fa)
        b = ((w - w * fb) / 2.0, h * (1.0 - fb), (w + w * fb) / 2.0, float(h))
    elif m == "descend":
        a = ((w - w * fa) / 2.0, h * (1.0 - fa), (w + w * fa) / 2.0, float(h))
        b = ((w - w * fb) / 2.0, 0.0, (w + w * fb) / 2.0, h * fb)
    else:  # pragma: no cover - plan_move only produces known moves
        raise ValueError(f"unknown move {m!r}")
    return a, b
