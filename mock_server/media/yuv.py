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


def rgb_to_yuv420p(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB with even H, W -> Y (H, W), U (H/2, W/2), V (H/2, W/2) uint8."""
    h, w, _ = rgb.shape
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    luma = _KR * r + _KG * g + _KB * b
    y = np.clip(np.rint(16.0 + luma * (219.0 / 255.0)), 0, 255).astype(np.uint8)
    # chroma of the 2x2 mean (chroma is linear in RGB, so this is the mean chroma)
    q = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    qr, qg, qb = q[..., 0], q[..., 1], q[..., 2]
    ql = _KR * qr + _KG * qg + _KB * qb
    u = 128.0 + (qb - ql) * (224.0 / 255.0 / (2.0 * (1.0 - _KB)))
    v = 128.0 + (qr - ql) * (224.0 / 255.0 / (2.0 * (1.0 - _KR)))
    u = np.clip(np.rint(u), 0, 255).astype(np.uint8)
    v = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return y, u, v


def _double(plane: np.ndarray) -> np.ndarray:
    """2x linear up-sampling aligned on the source samples: out[2i, 2j] == plane[i, j].

    Shape (2h-1, 2w-1); odd samples are rounded means of their neighbours.
    """
    p = plane.astype(np.uint16)
    h, w = p.shape
    rows = np.empty((2 * h - 1, w), np.uint16)
    rows[0::2] = p
    rows[1::2] = (p[:-1] + p[1:] + 1) >> 1
    out = np.empty((2 * h - 1, 2 * w - 1), np.uint16)
    out[:, 0::2] = rows
    out[:, 1::2] = (rows[:, :-1] + rows[:, 1:] + 1) >> 1
    return out.astype(np.uint8)


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
            self._big = tuple(Image.fromarray(_double(p), mode="L") for p in (yp, up, vp))  # type: ignore[assignment]
        return self._big  # type: ignore[return-value]

    def is_identity(self, box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        return (abs(x0) < 1e-9 and abs(y0) < 1e-9
                and abs(x1 - self.w) < 1e-9 and abs(y1 - self.h) < 1e-9)

    def render(self, box: tuple[float, float, float, float],
               y_out: np.ndarray, u_out: np.ndarray, v_out: np.ndarray) -> None:
        """Fill the output planes with the content of ``box`` (luma pixel coords of
        the unpadded image; may reach into the padding)."""
        if self.is_identity(box):
            np.copyto(y_out, self.y)
            np.copyto(u_out, self.u)
            np.copyto(v_out, self.v)
            return
        by, bu, bv = self._build()
        x0, y0, x1, y1 = box
        # Continuous coordinate p (pixel i spans [i, i+1)) maps to 2x-image
        # coordinate 2p - 0.5, whose floor is the nearest 2x sample.
        ly = _clamp_box((2 * (x0 + self.mx) - 0.5, 2 * (y0 + self.my) - 0.5,
                         2 * (x1 + self.mx) - 0.5, 2 * (y1 + self.my) - 0.5), by.size)
        cmx, cmy = self.mx // 2, self.my // 2
        lc = _clamp_box((x0 + 2 * cmx - 0.5, y0 + 2 * cmy - 0.5,
                         x1 + 2 * cmx - 0.5, y1 + 2 * cmy - 0.5), bu.size)
        h, w = y_out.shape
        np.copyto(y_out, np.asarray(by.resize((w, h), Image.Resampling.NEAREST, box=ly)))
        ch, cw = u_out.shape
        np.copyto(u_out, np.asarray(bu.resize((cw, ch), Image.Resampling.NEAREST, box=lc)))
        np.copyto(v_out, np.asarray(bv.resize((cw, ch), Image.Resampling.NEAREST, box=lc)))


def _clamp_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    w, h = size
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), w - 1.0), min(max(y0, 0.0), h - 1.0),
            min(max(x1, 1.0), float(w)), min(max(y1, 1.0), float(h)))
