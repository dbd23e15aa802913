"""Image intake for ``first_frame_url`` / ``last_frame_url``: fetch (http/https, data URLs, oss://
uploads), then inspect (format, decodability, dimensions, size). Every refusal is a catalogue error.

Where a check fails (see docs/assumptions.md, "Image checks"): fetching, format and decoding are the
service's synchronous "data inspection" and fail the submit with HTTP 400 (observed live: 400
``InvalidParameter.DataInspection`` at submit, api-facts §2); dimensions out of range are an algorithm
check and fail the task (FAILED ``InvalidParameter``, like the documented "The size is not match"
task failure).

Some http(s) URLs are answered from this machine and never fetched (``LocalUrls``, decided in
``local_image`` before any connection is attempted): a user's ``--asset-map`` prefixes, the API
document's two sample URLs (built-in stand-ins, unless turned off) and any URL of a kf2v-mock's own
``/_mock/samples/`` route. Their bytes then get exactly the checks a download gets.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from PIL import Image, UnidentifiedImageError

from ..assets import asset_map, samples
from ..assets.asset_map import AssetMapping
from ..tasks.errors import DashScopeError
from .image_fetch import TooLarge, UrlRefused, UrlRules, fetch

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # api-facts §2: file size <= 10 MB
# api-facts §2: [240, 8000] px in the newest reference (older pages: [360, 2000]). One place to change.
MIN_SIDE = 240
MAX_SIDE = 8000
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}
ACCEPTED_MIME = {*ACCEPTED_FORMATS.values(), "image/jpg"}  # data URLs; "jpg" is a common alias
DOWNLOAD_TIMEOUT_SECONDS = 20.0  # ASSUMPTION: the service's own limit is not documented
# Refuse before decoding anything whose header claims more pixels than this (decompression bombs).
MAX_PIXELS = MAX_SIDE * MAX_SIDE

_EXIF_ORIENTATION = 0x0112
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.S)


@dataclass(frozen=True)
class FrameImage:
    data: bytes
    width: int
    height: int
    format: str

    @property
    def size_ok(self) -> bool:
        return all(MIN_SIDE <= side <= MAX_SIDE for side in (self.width, self.height))


# ``resolve_oss(key) -> bytes`` raises DashScopeError itself when the key is not usable.
OssResolver = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True)
class LocalUrls:
    """Which http(s) URLs are answered from this machine (``Settings.local_urls()``)."""
    asset_map: tuple[AssetMapping, ...] = ()
    doc_samples: bool = True  # the API document's two sample URLs -> the built-in frames


def local_image(url: str, local: LocalUrls) -> bytes | None:
    """The bytes behind ``url`` if it is answered locally, None if it must be fetched. A mapped URL
    whose file is missing fails like a download that failed; one over the size cap like a large
    download. Reads files: call it off the event loop."""
    mapped = asset_map.find(url, local.asset_map)  # the user's own mappings win
    if mapped is False:
        raise DashScopeError.of("media_download_failed")
    if mapped is not None:
        return _read_capped(mapped)
    if local.doc_samples and url in samples.DOC_SAMPLE_URLS:
        return samples.sample_bytes(*samples.DOC_SAMPLE_URLS[url])
    path = urlsplit(url).path
    if path.startswith(samples.SAMPLES_PATH + "/"):
        # A kf2v-mock's own sample route, whichever host or port the client knows it by.
        sample = samples.parse_file_name(path[len(samples.SAMPLES_PATH) + 1:])
        if sample is None:
            raise DashScopeError.of("media_download_failed")  # the route answers 404
        return samples.sample_bytes(*sample)
    return None


def _read_capped(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError:
        raise DashScopeError.of("media_download_failed") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise DashScopeError.of("image_size_unsupported")  # as for a download over the cap
    return data


async def load_frame(url: str, *, session: aiohttp.ClientSession, oss_resolve_header: bool,
                     resolve_oss: OssResolver,
                     download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
                     url_rules: UrlRules = UrlRules(), local: LocalUrls = LocalUrls()) -> FrameImage:
    """Fetch and inspect one frame; raises ``DashScopeError`` for anything the service refuses."""
    loop = asyncio.get_running_loop()
    if url.startswith("data:"):
        # Up to ~13 MB of base64: decode it off the event loop.
        data = await loop.run_in_executor(None, _decode_data_url, url)
    elif url.startswith("oss://"):
        if not oss_resolve_header:
            raise DashScopeError.of("oss_resolve_missing")
        data = await resolve_oss(url[len("oss://"):])
    elif url.startswith(("http://", "https://")):
        # Answered from this machine, or fetched: decided here, before any connection.
        data = await loop.run_in_executor(None, local_image, url, local)
        if data is None:
            data = await _download(url, session, download_timeout, url_rules)
    else:
        raise DashScopeError.of("invalid_url")
    if len(data) > MAX_IMAGE_BYTES:
        raise DashScopeError.of("image_size_unsupported")
    return await loop.run_in_executor(None, inspect_image, data)


def _decode_data_url(url: str) -> bytes:
    match = _DATA_URL.match(url)
    if not match:
        raise DashScopeError.of("invalid_url")
    if match["mime"].lower() not in ACCEPTED_MIME:
        raise DashScopeError.of("media_format")
    payload = match["data"]
    # Cheap guard before decoding: base64 inflates by 4/3.
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 8:
        raise DashScopeError.of("image_size_unsupported")
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise DashScopeError.of("image_decode_failed") from None


async def _download(url: str, session: aiohttp.ClientSession, timeout: float,
                    rules: UrlRules) -> bytes:
    try:
        result = await fetch(url, session, rules, max_bytes=MAX_IMAGE_BYTES, timeout=timeout)
    except UrlRefused:
        # A URL the rules refuse answers like one that cannot be downloaded (README, "Isolation").
        raise DashScopeError.of("media_download_failed") from None
    except TooLarge:
        raise DashScopeError.of("image_size_unsupported") from None
    except asyncio.TimeoutError:
        raise DashScopeError.of("media_download_timeout") from None
    except (aiohttp.ClientError, ValueError, OSError):
        raise DashScopeError.of("media_download_failed") from None
    if result.status in (401, 403):
        raise DashScopeError.of("media_unauthorized")
    if result.body is None:
        raise DashScopeError.of("media_download_failed")
    return result.body


def inspect_image(data: bytes) -> FrameImage:
    """Format, header and full decode check. Runs in a worker thread (decoding is CPU work)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the accepted formats' parsers ever see the bytes (no TIFF, EPS, ... plugins).
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        except UnidentifiedImageError:
            raise DashScopeError.of("media_format") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own limit, from the header alone: an absurd size, refused like one.
            raise DashScopeError.of("image_size_unsupported") from None
        except Exception:
            raise DashScopeError.of("image_decode_failed") from None
        if image.format not in ACCEPTED_FORMATS:
            raise DashScopeError.of("media_format")
        width, height = image.size
        # The header's dimensions, checked before anything is decoded (decompression
        # bombs), and before reading EXIF: PngImageFile.getexif() decodes the whole image.
        if width * height > MAX_PIXELS:
            raise DashScopeError.of("image_size_unsupported")
        if _orientation(image) in (5, 6, 7, 8):
            # Shown rotated by 90 degrees (the renderer applies EXIF orientation too).
            width, height = height, width
        # api-facts §2: PNG without transparency. ASSUMPTION: an alpha channel is refused as a format issue.
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            raise DashScopeError.of("media_format")
        try:
            image.load()
        except Exception:
            raise DashScopeError.of("image_decode_failed") from None
    return FrameImage(data=data, width=width, height=height, format=image.format)


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a damaged file: the full decode below reports it
        return 1
