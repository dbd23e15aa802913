"""Image decoding/fitting, RGB -> yuv420p (BT.709, limited range) and a cheap
sub-pixel plane sampler used for camera moves and template effects.
"""
from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image, ImageOps

# BT.709 luma coefficients; the encoder tags the stream as bt709/tv so players
# and ffmpeg's own decoder convert back with the same matrix.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB


def decode_image(data: bytes, cover: tuple[int, int] | None = None) -> Image.Image:
    """Decode encoded image bytes into an upright RGB Pillow image.

    ``cover`` (w, h), if given, lets JPEG decoding use DCT down-scaling while
    keeping the image at least that large in both dimensions (either orientation).
    Transparent pixels are composited over white.
    """
    img = Image.open(BytesIO(data))
    if cover is not None and img.format == "JPEG":
        side = max(cover)
        img.draft("RGB", (side, side))
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return img.convert("RGB")


def fit_cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale ``img`` to cover ``width`` x ``height`` and centre-crop (aspect kept)."""
    iw, ih = img.size
    scale = max(width / iw, height / ih)
    # Crop size in source pixels, never past the image: float error can otherwise give a box
    # offset like -1.4e-14, which Pillow refuses.
    cw, ch = min(iw, width / scale), min(ih, height / scale)
    x0 = max(0.0, (iw - cw) / 2.0)
    y0 = max(0.0, (ih - ch) / 2.0)
    return img.resize((width, height), Image.Resampling.LANCZOS,
                      box=(x0, y0, x0 + cw, y0 + ch), reducing_gap=3.0)


# Fixed-point (16 fractional bits) BT.709 limited-range coefficients. Integer arithmetic gives the
# same bytes on every machine and library build (float paths may round differently where a
# compiler fuses multiply-adds), and is several times faster than float32 on whole images.
_FRAC = 16
_Y_COEF = tuple(int(round(k * 219.0 / 255.0 * (1 << _FRAC))) for k in (_KR, _KG, _KB))
_CU = 224.0 / 255.0 / (2.0 * (1.0 - _KB))
_CV = 224.0 / 255.0 / (2.0 * (1.0 - _KR))
_U_COEF = tuple(int(round(k * (1 << _FRAC))) for k in (-_CU * _KR, -_CU * _KG, _CU * (1.0 - _KB)))
_V_COEF = tuple(int(round(k * (1 << _FRAC))) for k in (_CV * (1.0 - _KR), -_CV * _KG, -_CV * _KB))


def rgb_to_yuv420p(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB with even H, W -> Y (H, W), U (H/2, W/2), V (H/2, W/2) uint8.

    Chroma is that of each 2x2 block's mean colour (chroma is linear in RGB). Converted in bands
    of ``_BAND`` rows, so the int32 scratch stays small (whole-image scratch was 40 MB at 1080P,
    which the render worker's heap then kept for the whole clip)."""
    h, w, _ = rgb.shape
    y = np.empty((h, w), np.uint8)
    u = np.empty((h // 2, w // 2), np.uint8)
    v = np.empty((h // 2, w // 2), np.uint8)
    for top in range(0, h, _BAND):
        band = rgb[top:top + _BAND]
        r, g, b = (band[..., i].astype(np.int32) for i in range(3))
        y[top:top + _BAND] = _mix(r, g, b, _Y_COEF, 16, _FRAC)
        # Sums of each 2x2 block (4x the mean): two more fractional bits in the shift below.
        r4, g4, b4 = (_quad_sum(c) for c in (r, g, b))
        half = slice(top // 2, (top + _BAND) // 2)
        u[half] = _mix(r4, g4, b4, _U_COEF, 128, _FRAC + 2)
        v[half] = _mix(r4, g4, b4, _V_COEF, 128, _FRAC + 2)
    return y, u, v


_BAND = 64  # rows (even, so that 2x2 blocks never straddle two bands)


def _quad_sum(c: np.ndarray) -> np.ndarray:
    pairs = c[0::2] + c[1::2]
    return pairs[:, 0::2] + pairs[:, 1::2]


def _mix(r: np.ndarray, g: np.ndarray, b: np.ndarray, coef: tuple[int, int, int], offset: int,
         shift: int) -> np.ndarray:
    """``clip(offset + (cr*r + cg*g + cb*b) / 2**shift)`` rounded, as uint8 (int32 throughout)."""
    acc = r * coef[0]
    acc += g * coef[1]
    acc += b * coef[2]
    acc += (offset << shift) + (1 << (shift - 1))
    acc >>= shift
    np.clip(acc, 0, 255, out=acc)
    return acc.astype(np.uint8)


def _double(plane: np.ndarray) -> np.ndarray:
    """2x linear up-sampling aligned on the source samples: out[2i, 2j] == plane[i, j].

    Shape (2h-1, 2w-1); odd samples are rounded means of their neighbours. Built in bands of
    ``_BAND`` source rows, so the scratch stays small next to the result.
    """
    h, w = plane.shape
    out = np.empty((2 * h - 1, 2 * w - 1), np.uint8)
    for top in range(0, h, _BAND):
        bottom = min(top + _BAND, h)
        rows = plane[top:bottom]                    # even output rows: the samples ...
        even = out[2 * top:2 * bottom - 1:2]
        even[:, 0::2] = rows
        even[:, 1::2] = _mean_up(rows[:, :-1], rows[:, 1:])  # ... and the means between them
        last = min(bottom, h - 1)                   # odd output rows: means of two rows
        if last > top:
            between = _mean_up(plane[top:last], plane[top + 1:last + 1])
            odd = out[2 * top + 1:2 * last:2]
            odd[:, 0::2] = between
            odd[:, 1::2] = _mean_up(between[:, :-1], between[:, 1:])
    return out


def _mean_up(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a + b + 1) >> 1`` without widening: halves, plus one where either is odd."""
    return (a >> 1) + (b >> 1) + ((a | b) & 1)


class PlaneSampler:
    """Resamples one image's yuv420p planes through a crop box, cheaply.

    The planes are mirror-padded by ``margin`` luma pixels (rounded up to even)
    and up-sampled 2x once. A frame is then a nearest-neighbour lookup on the
    2x image (Pillow, in C): positions are accurate to a quarter source pixel,
    so slow zooms and pans do not visibly step, at about the cost of a copy.
    The identity box returns the original planes exactly.
    """

    def __init__(self, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                 margin_x: int = 2, margin_y: int = 2) -> None:
        self.h, self.w = y.shape
        self.y, self.u, self.v = y, u, v
        self.mx = max(2, margin_x + (margin_x & 1))
        self.my = max(2, margin_y + (margin_y & 1))
        self._big: tuple[Image.Image, Image.Image, Image.Image] | None = None

    def _build(self) -> tuple[Image.Image, Image.Image, Image.Image]:
        if self._big is None:
            mx, my = self.mx, self.my
            yp = np.pad(self.y, ((my, my), (mx, mx)), mode="symmetric")
            up = np.pad(self.u, ((my // 2, my // 2), (mx // 2, mx // 2)), mode="symmetric")
            vp = np.pad(self.v, ((my // 2, my // 2), (mx // 2, mx // 2)), mode="symmetric")
            big = [_double(p) for p in (yp, up, vp)]
            self._big = tuple(Image.fromarray(p, mode="L") for p in big)  # type: ignore[assignment]
            # The original samples sit at the even positions of the 2x planes (past the doubled
            # margins): views of those replace the planes, which need not stay in memory twice.
            (h, w), (ch, cw) = self.y.shape, self.u.shape
            self.y = big[0][2 * my:2 * (my + h):2, 2 * mx:2 * (mx + w):2]
            self.u = big[1][my:my + 2 * ch:2, mx:mx + 2 * cw:2]
            self.v = big[2][my:my + 2 * ch:2, mx:mx + 2 * cw:2]
        return self._big  # type: ignore[return-value]

    def is_identity(self, box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        return (abs(x0) < 1e-9 and abs(y0) < 1e-9
                and abs(x1 - self.w) < 1e-9 and abs(y1 - self.h) < 1e-9)

    def render(self, box: tuple[float, float, float, float],
               y_out: np.ndarray, u_out: np.ndarray, v_out: np.ndarray) -> None:
        """Fill the output planes with the content of ``box`` (luma pixel coords of
        the unpadded image; may reach into the padding)."""
        for out, plane in zip((y_out, u_out, v_out), self.planes(box)):
            np.copyto(out, plane)

    def planes(self, box: tuple[float, float, float, float]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The content of ``box`` as new (read-only) Y, U, V arrays of the output size, or the
        original planes for the identity box: no copy into a caller's buffer."""
        if self.is_identity(box):
            return self.y, self.u, self.v
        y, u, v = self.images(box)
        return np.asarray(y), np.asarray(u), np.asarray(v)

    def images(self, box: tuple[float, float, float, float]
               ) -> tuple[Image.Image, Image.Image, Image.Image]:
        """The content of ``box`` as Pillow "L" images (Y, U, V) of the output size: what
        ``Image.blend`` takes without a round trip through numpy."""
        if self.is_identity(box):  # only a blend at an end of the camera move: rare, not cached
            y, u, v = (Image.fromarray(np.ascontiguousarray(p)) for p in (self.y, self.u, self.v))
            return y, u, v
        by, bu, bv = self._build()
        x0, y0, x1, y1 = box
        # Continuous coordinate p (pixel i spans [i, i+1)) maps to 2x-image
        # coordinate 2p - 0.5, whose floor is the nearest 2x sample.
        ly = _clamp_box((2 * (x0 + self.mx) - 0.5, 2 * (y0 + self.my) - 0.5,
                         2 * (x1 + self.mx) - 0.5, 2 * (y1 + self.my) - 0.5), by.size)
        cmx, cmy = self.mx // 2, self.my // 2
        lc = _clamp_box((x0 + 2 * cmx - 0.5, y0 + 2 * cmy - 0.5,
                         x1 + 2 * cmx - 0.5, y1 + 2 * cmy - 0.5), bu.size)
        h, w = self.h, self.w
        ch, cw = self.u.shape
        return (by.resize((w, h), Image.Resampling.NEAREST, box=ly),
                bu.resize((cw, ch), Image.Resampling.NEAREST, box=lc),
                bv.resize((cw, ch), Image.Resampling.NEAREST, box=lc))


def _clamp_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    w, h = size
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), w - 1.0), min(max(y0, 0.0), h - 1.0),
            min(max(x1, 1.0), float(w)), min(max(y1, 1.0), float(h)))
