"""The "AI生成" watermark (what the real service draws bottom-right when
``parameters.watermark`` is true), without any font file.

Choice: a hand-made 16x16 bitmap of the four glyphs, kept below as string art.
No CJK font is installed on the machines and the emulator must not depend on
system fonts. The PyPI package list has no small, maintained package that ships
a CJK font: the candidates are unmaintained repackagings of the full Noto Sans
CJK OTF (``cvttf-notosanscjk-*`` 2019, ``rinoh-typeface-notosanscjk`` 2018,
each ~16 MB+), and the maintained ``fontpkg-*`` family has no CJK member. Four
glyphs of string art are a few hundred bytes, need no dependency and render the
same everywhere.

The bitmap is scaled to the frame with an integer nearest-neighbour blow-up and
an area downscale, which gives anti-aliased edges at any size. The mark is
white at 85 % opacity over a soft dark shadow, sized relative to the shorter
frame side.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

# 16 rows each; '#' = ink. Latin letters are narrower than the CJK glyphs.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (
        "....##....",
        "....##....",
        "...####...",
        "...#..#...",
        "...#..#...",
        "..##..##..",
        "..#....#..",
        "..#....#..",
        ".##....##.",
        ".########.",
        ".########.",
        ".#......#.",
        "##......##",
        "#........#",
        "#........#",
        "..........",
    ),
    "I": (
        "######",
        "######",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "..##..",
        "######",
        "######",
        "......",
    ),
    "生": (
        "...##...##......",
        "...##...##......",
        "..##....##......",
        "..############..",
        ".##.....##......",
        ".#......##......",
        "##......##......",
        "........##......",
        "..###########...",
        "........##......",
        "........##......",
        "........##......",
        "........##......",
        "################",
        "################",
        "................",
    ),
    "成": (
        ".........#..##..",
        ".........#...##.",
        ".........#......",
        ".###############",
        ".##......#......",
        ".##......#....##",
        ".##......##..##.",
        ".######..##.##..",
        ".##..##...###...",
        ".##..##...##....",
        ".##..##..####...",
        ".##..##.##..##.#",
        ".##.###......#.#",
        ".#...........###",
        "##............##",
        "#...............",
    ),
}

TEXT = "AI生成"
_GAP = 2  # columns between glyphs, in bitmap units
_SPACE_AFTER_LATIN = 3  # extra gap between "AI" and "生成"


def text_bitmap(text: str = TEXT) -> np.ndarray:
    """The text as a 16-row boolean array (True = ink)."""
    cols: list[np.ndarray] = []
    for i, ch in enumerate(text):
        g = np.array([[c == "#" for c in row] for row in _GLYPHS[ch]], dtype=bool)
        if i:
            gap = _GAP + (_SPACE_AFTER_LATIN if text[i - 1].isascii() and not ch.isascii() else 0)
            cols.append(np.zeros((16, gap), dtype=bool))
        cols.append(g)
    return np.concatenate(cols, axis=1)


@dataclass(frozen=True)
class Watermark:
    """Precomputed watermark overlay for one frame size.

    ``y0:y1, x0:x1`` is the luma region; the alphas are 0..256 integers for that
    region (text and shadow); the chroma alpha covers the matching half-size
    chroma region ``y0//2:y1//2, x0//2:x1//2``.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    text_alpha: np.ndarray     # uint16, luma region shape
    shadow_alpha: np.ndarray   # uint16, luma region shape
    chroma_alpha: np.ndarray   # uint16, chroma region shape

    def apply(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Draw the mark in place on the yuv420p planes (2-D uint8 arrays)."""
        ry = y[self.y0:self.y1, self.x0:self.x1]
        acc = ry.astype(np.uint16)
        # shadow: darken towards 16 (video black)
        acc *= 256 - self.shadow_alpha
        acc += 16 * self.shadow_alpha + 128
        acc >>= 8
        # text: blend towards 235 (video white)
        acc *= 256 - self.text_alpha
        acc += 235 * self.text_alpha + 128
        acc >>= 8
        ry[...] = acc
        ca = self.chroma_alpha
        for plane in (u, v):
            rc = plane[self.y0 // 2:self.y1 // 2, self.x0 // 2:self.x1 // 2]
            c = rc.astype(np.uint16)
            c *= 256 - ca
            c += 128 * ca + 128
            c >>= 8
            rc[...] = c


def _render_mask(bitmap: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Anti-aliased float mask (0..1) of ``bitmap`` scaled to ``out_w`` x ``out_h``."""
    rows, cols = bitmap.shape
    k = max(1, int(np.ceil(out_h / rows)) * 4)
    big = np.repeat(np.repeat(bitmap.astype(np.uint8) * 255, k, axis=0), k, axis=1)
    img = Image.fromarray(big, mode="L").resize((out_w, out_h), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


@lru_cache(maxsize=32)
def watermark_for(width: int, height: int) -> Watermark:
    """The overlay for a ``width`` x ``height`` frame (both even), cached per size."""
    short = min(width, height)
    text_h = max(10, int(round(short * 0.04)))
    bitmap = text_bitmap()
    text_w = max(1, int(round(bitmap.shape[1] * text_h / bitmap.shape[0])))
    margin = max(4, int(round(short * 0.03)))
    off = max(1, int(round(text_h / 14)))  # shadow offset
    pad = off + 1
    # region (even-aligned so the chroma region matches)
    x1 = width - margin + pad
    y1 = height - margin + pad
    x0 = x1 - text_w - 2 * pad
    y0 = y1 - text_h - 2 * pad
    x0 -= x0 % 2
    y0 -= y0 % 2
    x1 += x1 % 2
    y1 += y1 % 2
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    rw, rh = x1 - x0, y1 - y0

    mask = _render_mask(bitmap, text_w, text_h)
    text = np.zeros((rh, rw), np.float32)
    tx = max(0, rw - pad - text_w)
    ty = max(0, rh - pad - text_h)
    text[ty:ty + text_h, tx:tx + text_w] = mask[: rh - ty, : rw - tx]
    shadow = np.zeros_like(text)
    sy, sx = ty + off, tx + off
    h2 = min(text_h, rh - sy)
    w2 = min(text_w, rw - sx)
    shadow[sy:sy + h2, sx:sx + w2] = mask[:h2, :w2]
    # soften the shadow a little
    shadow_img = Image.fromarray((shadow * 255).astype(np.uint8), mode="L")
    shadow = np.asarray(shadow_img.filter(ImageFilter.BoxBlur(max(1, off))), np.float32) / 255.0

    text_alpha = np.rint(text * 0.85 * 256).astype(np.uint16)
    shadow_alpha = np.rint(shadow * 0.45 * 256).astype(np.uint16)
    # chroma: desaturate where the text is (2x2 average of the text alpha)
    ca = text_alpha.astype(np.float32)
    ca = ca[: rh - rh % 2, : rw - rw % 2]
    ca = ca.reshape(rh // 2, 2, rw // 2, 2).mean(axis=(1, 3))
    chroma_alpha = np.rint(ca).astype(np.uint16)
    for a in (text_alpha, shadow_alpha, chroma_alpha):
        a.setflags(write=False)
    return Watermark(x0, y0, x1, y1, text_alpha, shadow_alpha, chroma_alpha)
