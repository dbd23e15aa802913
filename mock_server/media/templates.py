"""Stand-ins for the kf2v video-effect templates (first frame only).

The real templates (api-facts section 3) turn a single person into a stylised
clip. The mock cannot do that; each template gets a cheap, deterministic and
visibly different motion + colour treatment of the first image instead:

- ``hanfu-1`` (唐韵翩然): slow push-in with a gentle sideways sway, warm
  golden/red grade with lifted shadows.
- ``solaron`` (机甲变身): cold steel-blue, desaturated grade; three energy pulses
  (white flash + zoom punch).
- ``magazine`` (闪耀封面): quick push-in to a "cover" framing, punchy contrast
  and saturation, a white border growing in, twinkling star sparkles.
- ``mech1`` (机械觉醒): digital glitch - seeded horizontal band tearing that
  grows and bursts, green/cyan tint, slight posterisation.
- ``mech2`` (赛博登场): cyberpunk magenta/cyan grade, chroma split (colour
  fringes), scanlines, a slow rising camera.

Every effect has strength 0 at t=0, so frame 0 is exactly the first image.
All randomness comes from the request seed (no global state).
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .clip_request import TEMPLATES
from .yuv import PlaneSampler


_IDENT = np.arange(256, dtype=np.float32)


def _smoothstep(x: float) -> float:
    x = 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
    return x * x * (3.0 - 2.0 * x)


def _lut(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _apply_lut(plane: np.ndarray, lut: np.ndarray) -> None:
    # element-wise in place is safe: each index is read before its slot is written
    np.take(lut, plane, out=plane, mode="clip")


def _centred_box(w: int, h: int, s: float, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float, float, float]:
    """Box zoomed by ``s`` (>=1) about the centre, shifted by (dx, dy) and kept inside the image."""
    bw, bh = w / s, h / s
    x0 = (w - bw) / 2.0 + dx
    y0 = (h - bh) / 2.0 + dy
    x0 = min(max(x0, 0.0), w - bw)
    y0 = min(max(y0, 0.0), h - bh)
    return (x0, y0, x0 + bw, y0 + bh)


class TemplateEffect:
    """Renders frame ``i`` of a template clip into yuv420p plane views."""

    def __init__(self, name: str, sampler: PlaneSampler, seed: int, num_frames: int) -> None:
        if name not in TEMPLATES:
            raise ValueError(f"unknown template {name!r}")
        self.name = name
        self.s = sampler
        self.w, self.h = sampler.w, sampler.h
        self.n = num_frames
        self.rng_seed = (int(seed) & 0xFFFF_FFFF) ^ zlib.crc32(name.encode())
        rng = np.random.default_rng(self.rng_seed)
        self.jitter = float(rng.uniform(0.85, 1.15))  # seeded amount variation
        self.phase = float(rng.uniform(0.0, 2 * math.pi))
        if name == "hanfu-1":
            # radial vignette weight 0..1 (corners), scaled per frame by the envelope
            yy = (np.arange(self.h, dtype=np.float32) + 0.5) / self.h - 0.5
            xx = (np.arange(self.w, dtype=np.float32) + 0.5) / self.w - 0.5
            r2 = (xx[None, :] ** 2 + yy[:, None] ** 2) * 2.0
            self.vignette = np.rint(np.clip(r2, 0.0, 1.0) ** 1.5 * 256).astype(np.uint16)
            self._vbuf = np.empty((self.h, self.w), np.uint16)
            self._vmul = np.empty((self.h, self.w), np.uint16)
        if name == "magazine":
            k = 14
            self.stars = np.column_stack([
                rng.uniform(0.08, 0.92, k) * self.w,
                rng.uniform(0.08, 0.92, k) * self.h,
                rng.uniform(0, 2 * math.pi, k),
                rng.uniform(0.6, 1.0, k),
            ])

    # -- helpers -----------------------------------------------------------
    def _env(self, t: float, ramp: float = 0.35) -> float:
        return _smoothstep(t / ramp)

    def render(self, i: int, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        t = i / (self.n - 1)
        getattr(self, "_" + self.name.replace("-", "_"))(i, t, y, u, v)

    # -- templates ---------------------------------------------------------
    def _hanfu_1(self, i: int, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        e = self._env(t)
        s = 1.0 + 0.12 * self.jitter * _smoothstep(t)
        slack = self.w / 2.0 * (1.0 - 1.0 / s)
        dx = 0.6 * slack * math.sin(2 * math.pi * 0.8 * t + self.phase) * e
        self.s.render(_centred_box(self.w, self.h, s, dx=dx), y, u, v)
        if e <= 0.0:
            return
        # lifted shadows, soft highlights
        yl = _IDENT + e * (0.18 * (235.0 - _IDENT) * (1.0 - _IDENT / 255.0) - 0.04 * _IDENT * (_IDENT / 255.0))
        _apply_lut(y, _lut(yl))
        _apply_lut(u, _lut(128.0 + (_IDENT - 128.0) * (1.0 - 0.3 * e) - 20.0 * e))
        _apply_lut(v, _lut(128.0 + (_IDENT - 128.0) * (1.0 + 0.10 * e) + 16.0 * e))
        # darken the corners: y * (256 - 0.55*e*vignette) >> 8
        strength = int(round(0.55 * e * 256))
        np.multiply(self.vignette, strength, out=self._vmul)
        self._vmul >>= 8
        np.subtract(256, self._vmul, out=self._vmul)
        np.multiply(y, self._vmul, out=self._vbuf, dtype=np.uint16)
        self._vbuf >>= 8
        np.copyto(y, self._vbuf, casting="unsafe")

    def _solaron(self, i: int, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        e = self._env(t)
        pulse = 0.0
        for tj in (0.22, 0.47, 0.72):
            if t >= tj:
                pulse += math.exp(-(t - tj) / 0.045)
        pulse = min(1.0, pulse) * self.jitter
        s = 1.0 + 0.05 * e * t + 0.07 * pulse
        self.s.render(_centred_box(self.w, self.h, s), y, u, v)
        if e <= 0.0:
            return
        flash = 0.6 * pulse
        yl = _IDENT * (1.0 + 0.12 * e) - 12.0 * e
        yl = yl + flash * (235.0 - yl)
        _apply_lut(y, _lut(yl))
        sat = 1.0 - 0.65 * e
        _apply_lut(u, _lut(128.0 + (_IDENT - 128.0) * sat + 16.0 * e))
        _apply_lut(v, _lut(128.0 + (_IDENT - 128.0) * sat - 7.0 * e))

    def _magazine(self, i: int, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        e = self._env(t, 0.3)
        s = 1.0 + 0.07 * self.jitter * _smoothstep(t / 0.45)
        self.s.render(_centred_box(self.w, self.h, s), y, u, v)
        if e <= 0.0:
            return
        x = (_IDENT - 16.0) / 219.0
        curve = 16.0 + 219.0 * (x * x * (3.0 - 2.0 * x))  # S-curve contrast
        _apply_lut(y, _lut(_IDENT + e * (curve - _IDENT) * 0.9 + 6.0 * e))
        _apply_lut(u, _lut(128.0 + (_IDENT - 128.0) * (1.0 + 0.4 * e)))
        _apply_lut(v, _lut(128.0 + (_IDENT - 128.0) * (1.0 + 0.4 * e) + 4.0 * e))
        # white cover border
        b = int(round(e * 0.035 * min(self.w, self.h))) & ~1
        if b >= 2:
            for plane, val, bb in ((y, 235, b), (u, 128, b // 2), (v, 128, b // 2)):
                plane[:bb] = val
                plane[-bb:] = val
                plane[:, :bb] = val
                plane[:, -bb:] = val
        # sparkles: small plus-shaped highlights that twinkle
        arm = max(2, int(round(0.012 * min(self.w, self.h))))
        for sx, sy, ph, amp in self.stars:
            a = e * amp * max(0.0, math.sin(2 * math.pi * 1.6 * t + ph)) ** 2
            if a < 0.05:
                continue
            cx, cy = int(sx), int(sy)
            r = max(1, int(round(arm * (0.5 + a))))
            ai = int(a * 256)
            for sl in ((slice(max(0, cy - r), cy + r + 1), slice(cx, cx + 1)),
                       (slice(cy, cy + 1), slice(max(0, cx - r), cx + r + 1))):
                reg = y[sl].astype(np.uint16)
                y[sl] = (reg * (256 - ai) + 235 * ai + 128) >> 8

    def _mech1(self, i: int, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        e = self._env(t, 0.3)
        burst = 1.0 if (i // 9) % 3 == 1 else 0.35
        s = 1.0 + (0.03 * burst * e)
        self.s.render(_centred_box(self.w, self.h, s), y, u, v)
        if e <= 0.0:
            return
        levels = 12.0
        post = np.floor((_IDENT - 16.0) / 219.0 * levels + 0.5) / levels * 219.0 + 16.0
        _apply_lut(y, _lut(_IDENT + 0.5 * e * (post - _IDENT)))
        _apply_lut(u, _lut(128.0 + (_IDENT - 128.0) * (1.0 - 0.3 * e) - 10.0 * e))
        _apply_lut(v, _lut(128.0 + (_IDENT - 128.0) * (1.0 - 0.3 * e) - 18.0 * e))
        # band tearing: rows shifted sideways, chroma moved with them
        rng = np.random.default_rng((self.rng_seed, i))
        nb = int(round((3 + 7 * burst) * e))
        hh = self.h // 2
        for _ in range(nb):
            bh = int(rng.integers(1, max(2, int(0.04 * hh))))  # chroma rows
            r0 = int(rng.integers(0, max(1, hh - bh)))
            shift = int(round(rng.uniform(-1, 1) * 0.06 * self.w * e * burst / 2.0))
            if shift == 0:
                continue
            ys = slice(2 * r0, 2 * (r0 + bh))
            y[ys] = np.roll(y[ys], 2 * shift, axis=1)
            u[r0:r0 + bh] = np.roll(u[r0:r0 + bh], shift, axis=1)
            v[r0:r0 + bh] = np.roll(v[r0:r0 + bh], shift, axis=1)

    def _mech2(self, i: int, t: float, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        e = self._env(t)
        c = _smoothstep(t)
        f = 1.0 - 0.09 * self.jitter * c  # rising camera: box anchored at the top, shrinking
        bw, bh = self.w * f, self.h * f
        x0 = (self.w - bw) / 2.0
        self.s.render((x0, 0.0, x0 + bw, bh), y, u, v)
        if e <= 0.0:
            return
        _apply_lut(y, _lut(_IDENT * (1.0 + 0.15 * e) - 10.0 * e))
        # magenta push with stronger saturation (a global LUT, cheap)
        _apply_lut(u, _lut(128.0 + (_IDENT - 128.0) * (1.0 + 0.3 * e) + 18.0 * e))
        _apply_lut(v, _lut(128.0 + (_IDENT - 128.0) * (1.0 + 0.3 * e) + 20.0 * e))
        # chroma split: U right, V left
        d = int(round(e * 0.008 * self.w))
        if d > 0:
            u[:, d:] = u[:, :-d].copy()
            v[:, :-d] = v[:, d:].copy()
        # scanlines: darken every third pair of rows, scrolling down slowly
        k = int(round(0.25 * e * 256))
        if k > 0:
            off = (i // 2) % 6
            for r in (off, off + 1):
                rows = y[r::6]
                rows[...] = (rows.astype(np.uint16) * (256 - k) + 16 * k + 128) >> 8


def make_effect(name: str, sampler: PlaneSampler, seed: int, num_frames: int) -> TemplateEffect:
    return TemplateEffect(name, sampler, seed, num_frames)


__all__ = ["TEMPLATES", "TemplateEffect", "make_effect"]
