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
from ..tasks.errors import DashScopeError, quoted
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
        raise DashScopeError.of("media_download_failed", reason=(
            f"{quoted(url)} is under an --asset-map prefix, but its directory holds no such file"))
    if mapped is not None:
        return _read_capped(mapped)
    if local.doc_samples and url in samples.DOC_SAMPLE_URLS:
        return samples.sample_bytes(*samples.DOC_SAMPLE_URLS[url])
    path = urlsplit(url).path
    if path.startswith(samples.SAMPLES_PATH + "/"):
        # A kf2v-mock's own sample route, whichever host or port the client knows it by.
        sample = samples.parse_file_name(path[len(samples.SAMPLES_PATH) + 1:])
        if sample is None:  # the route answers 404
            raise DashScopeError.of("media_download_failed", reason=(
                f"{quoted(url)} names no sample frame (GET {samples.SAMPLES_PATH} lists them)"))
        return samples.sample_bytes(*sample)
    return None


def _read_capped(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise DashScopeError.of("media_download_failed", reason=(
            f"--asset-map file {path} cannot be read: {exc.strerror}")) from None
    if len(data) > MAX_IMAGE_BYTES:  # as for a download over the cap
        raise DashScopeError.of("image_size_unsupported", reason=(
            f"--asset-map file {path} is over the {MAX_IMAGE_BYTES}-byte (10 MB) limit"))
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
            raise DashScopeError.of("oss_resolve_missing", reason=(
                "an oss:// URL needs the header X-DashScope-OssResourceResolve: enable"))
        data = await resolve_oss(url[len("oss://"):])
    elif url.startswith(("http://", "https://")):
        # Answered from this machine, or fetched: decided here, before any connection.
        data = await loop.run_in_executor(None, local_image, url, local)
        if data is None:
            data = await _download(url, session, download_timeout, url_rules)
    else:
        raise DashScopeError.of("invalid_url", reason=f"{quoted(url)} is not a URL it can fetch")
    if len(data) > MAX_IMAGE_BYTES:
        raise DashScopeError.of("image_size_unsupported", reason=(
            f"the image is {len(data)} bytes, over the {MAX_IMAGE_BYTES}-byte (10 MB) limit"))
    return await loop.run_in_executor(None, inspect_image, data)


def _decode_data_url(url: str) -> bytes:
    match = _DATA_URL.match(url)
    if not match:
        raise DashScopeError.of("invalid_url", reason=(
            f"{quoted(url, 40)} is not a data:<mime type>;base64,<data> URL"))
    if match["mime"].lower() not in ACCEPTED_MIME:
        raise DashScopeError.of("media_format", reason=(
            f"data URL of type {match['mime']}, not one of {', '.join(sorted(ACCEPTED_MIME))}"))
    payload = match["data"]
    # Cheap guard before decoding: base64 inflates by 4/3.
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 8:
        raise DashScopeError.of("image_size_unsupported", reason=(
            f"the data URL carries about {len(payload) * 3 // 4} bytes, over the 10 MB limit"))
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise DashScopeError.of("image_decode_failed",
                                reason=f"the data URL's base64 does not decode ({exc})") from None


def _download_error(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(catalogue name, reason) for a download that raised ``exc``."""
    if isinstance(exc, UrlRefused):
        # A URL the rules refuse answers like one that cannot be downloaded (README, "Isolation").
        return "media_download_failed", str(exc)
    if isinstance(exc, TooLarge):
        return "image_size_unsupported", str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return "media_download_timeout", f"no complete answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "media_download_failed", (f"{exc.host} does not resolve (DNS: "
                                         f"{exc.os_error.strerror or exc.os_error})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "media_download_failed", f"connection to {exc.host}:{exc.port} refused"
        return "media_download_failed", (f"cannot connect to {exc.host}:{exc.port} "
                                         f"({exc.os_error.strerror or exc.os_error})")
    return "media_download_failed", f"the download failed ({type(exc).__name__}: {exc})"[:200]


async def _download(url: str, session: aiohttp.ClientSession, timeout: float,
                    rules: UrlRules) -> bytes:
    shown = url if len(url) <= 100 else url[:99] + "…"
    try:
        result = await fetch(url, session, rules, max_bytes=MAX_IMAGE_BYTES, timeout=timeout)
    except (UrlRefused, TooLarge, asyncio.TimeoutError, aiohttp.ClientError, ValueError,
            OSError) as exc:
        name, reason = _download_error(exc, timeout)
        raise DashScopeError.of(name, reason=f"{shown}: {reason}") from None
    if result.status != 200:
        where = shown if result.url in ("", url) else f"{shown} (redirected to {result.url})"
        name = "media_unauthorized" if result.status in (401, 403) else "media_download_failed"
        raise DashScopeError.of(name, reason=f"{where} answered {result.status}")
    return result.body or b""


def inspect_image(data: bytes) -> FrameImage:
    """Format, header and full decode check. Runs in a worker thread (decoding is CPU work)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the accepted formats' parsers ever see the bytes (no TIFF, EPS, ... plugins).
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        except UnidentifiedImageError:
            raise DashScopeError.of("media_format", reason=(
                f"not a JPEG, PNG, BMP or WEBP image ({len(data)} bytes starting "
                f"{data[:8]!r})")) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's own limit, from the header alone: an absurd size, refused like one.
            raise DashScopeError.of("image_size_unsupported",
                                    reason=f"the header claims an absurd size ({exc})") from None
        except Exception as exc:
            raise DashScopeError.of("image_decode_failed", reason=(
                f"its header does not parse ({type(exc).__name__}: {exc})"[:200])) from None
        if image.format not in ACCEPTED_FORMATS:
            raise DashScopeError.of("media_format",
                                    reason=f"{image.format} is not JPEG, PNG, BMP or WEBP")
        width, height = image.size
        # The header's dimensions, checked before anything is decoded (decompression
        # bombs), and before reading EXIF: PngImageFile.getexif() decodes the whole image.
        if width * height > MAX_PIXELS:
            raise DashScopeError.of("image_size_unsupported", reason=(
                f"the {image.format} header claims {width}x{height} px, over "
                f"{MAX_SIDE}x{MAX_SIDE}; refused before decoding"))
        if _orientation(image) in (5, 6, 7, 8):
            # Shown rotated by 90 degrees (the renderer applies EXIF orientation too).
            width, height = height, width
        # api-facts §2: PNG without transparency. ASSUMPTION: an alpha channel is refused as a format issue.
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            raise DashScopeError.of("media_format", reason=(
                f"the {image.format} has transparency (mode {image.mode}); PNGs without an alpha "
                "channel only"))
        if image.format == "JPEG":
            # Every coefficient is still entropy-decoded (truncated or broken data fails the
            # same), but inverse-transformed at 1/8 scale: a 1080P check takes 1/64 of the pixel
            # memory, which the thread's heap would otherwise keep.
            image.draft(image.mode, (1, 1))
        try:
            image.load()
        except Exception as exc:
            raise DashScopeError.of("image_decode_failed", reason=(
                f"the {image.format} ({width}x{height}) does not decode ({type(exc).__name__}: "
                f"{exc})"[:200])) from None
    return FrameImage(data=data, width=width, height=height, format=image.format)


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a damaged file: the full decode below reports it
        return 1
