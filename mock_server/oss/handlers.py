"""The emulator's OSS stand-in over HTTP: signed result downloads (GET/HEAD, Range) and the
temporary-upload POST the SDK sends to ``upload_host``. Errors are OSS XML, not DashScope JSON."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from ..pipeline.endpoints import endpoint
from ..pipeline.keys import EMULATOR, ERROR_CODE
from ..pipeline.reasons import note
from ..tasks.models import UPLOAD_MAX_BYTES, Upload, UploadPolicy
from ..tasks.regions import REGIONS
from .object_keys import EC_INVALID_OBJECT_NAME, invalid_key_reason, path_inside
from .xml_errors import (EC_ANONYMOUS_DENIED, EC_NO_SUCH_KEY, EC_POLICY, OssError, error_xml,
                         new_oss_request_id)

# ASSUMPTION: what OSS allows before the file part is not in our sources (S3 allows 20 KB);
# the SDK's fields are about 1 KB.
MAX_FORM_FIELDS_BYTES = 64 * 1024


def oss_error(request: web.Request, error: OssError, **headers: str) -> web.Response:
    request_id = new_oss_request_id()
    request[ERROR_CODE] = error.code  # for the request journal
    if error.reason is not None:
        note(request, error.reason)
    body = error_xml(error, request_id, request.host)
    headers = {"x-oss-request-id": request_id, **({"x-oss-ec": error.ec} if error.ec else {}),
               **headers}
    return web.Response(status=error.status, text=body if request.method != "HEAD" else None,
                        content_type="application/xml", charset="utf-8", headers=headers)


RESULT_BUCKETS = frozenset(region.result_bucket for region in REGIONS.values())
UPLOAD_BUCKETS = frozenset(region.upload_bucket for region in REGIONS.values())


async def unserved(request: web.Request) -> web.Response:
    """OSS's answer to a method or path the stand-in does not serve under one of its buckets (OSS
    answers there, not DashScope); routed after every real bucket route."""
    bucket, key = request.match_info["bucket"], request.match_info["slash_key"][1:]
    allowed = (("GET", "HEAD") if bucket in RESULT_BUCKETS and key
               else ("POST",) if bucket in UPLOAD_BUCKETS and not key else ())
    if allowed:
        # OSS's documented 405 (no EC in that example): ResourceType BUCKET for /bucket[/].
        return oss_error(request, OssError(
            405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
            "", (("ResourceType", "Object" if key else "BUCKET"), ("Method", request.method)),
            reason=f"{request.method} is not served here (allowed: {', '.join(allowed)})"),
            Allow=", ".join(allowed))
    # ASSUMPTION: a bucket listing, or an object read without a signature, on a private bucket:
    # the anonymous refusal the result links answer without one.
    return oss_error(request, OssError(
        403, "AccessDenied", "You have no right to access this object because of bucket acl.",
        EC_ANONYMOUS_DENIED, reason=f"{request.method} {request.path} is not a signed link or an "
                                    "upload form: an anonymous request to a private bucket"))


@endpoint("download")
async def download(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    error = emulator.oss.check_link(bucket, key, dict(request.query), emulator.clock.now(),
                                    request.host)
    if error is not None:
        return oss_error(request, error)
    path = await asyncio.get_running_loop().run_in_executor(None, _existing_file, emulator, bucket,
                                                             key)
    if path is None:
        return oss_error(request, OssError(404, "NoSuchKey", "The specified key does not exist.",
                                           EC_NO_SUCH_KEY, (("Key", key),), reason=(
            f"no object {bucket}/{key[:120]} (its clip is not written yet, was deleted 24 h "
            "after its task ended, or never existed)")))
    return ObjectResponse(path, request.headers.get("Range"),
                          headers={"Content-Type": "video/mp4",
                                   "x-oss-request-id": new_oss_request_id()})


_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_MAX_DIGITS = 18  # a byte position of more digits is past the end of any object we store


def oss_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range OSS serves for ``header`` on an object of ``size`` bytes, or None for the
    whole object: OSS reads only the first of several ranges, and ignores (200, whole object) a
    range that is malformed or outside 0..size-1 rather than answering 416 (OSS "Use HTTP Range
    requests to get OSS resources in segments"; its x-oss-range-behavior: standard is not emulated)."""
    match = _RANGE.fullmatch((header or "").split(",", 1)[0].strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = (_position(text) for text in match.groups())
    if first is None:  # the last N bytes
        return (size - last, size - 1) if last is not None and 1 <= last <= size else None
    end = size - 1 if last is None else last
    return (first, end) if first <= end < size else None


def _position(digits: str) -> int | None:
    """A Range number; one with more digits than any object's size has (int() would even refuse
    one of over 4300) counts as past the end."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** _MAX_DIGITS


class ObjectResponse(web.FileResponse):
    """A stored object, with OSS's Range semantics instead of aiohttp's (which answers 416 or 400
    where OSS serves the whole object)."""

    def __init__(self, path: Path, range_header: str | None, **kwargs):
        super().__init__(path, **kwargs)
        self._range_header = range_header

    async def prepare(self, request: web.BaseRequest):
        if self._range_header is None:
            return await super().prepare(request)
        try:
            size = (await asyncio.get_running_loop().run_in_executor(None, self._path.stat)).st_size
        except OSError:  # deleted meanwhile (expired): aiohttp answers that as for any request
            return await super().prepare(request)
        served = oss_range(self._range_header, size)
        headers = request.headers.copy()
        del headers["Range"]
        if served is not None:
            headers["Range"] = f"bytes={served[0]}-{served[1]}"
        return await super().prepare(request.clone(headers=headers))


def _existing_file(emulator, bucket: str, key: str) -> Path | None:
    """The file behind ``bucket``/``key``, or None: a key that would leave its bucket (``..``,
    absolute), that the file system cannot even name (NUL, too long) or that is not a file."""
    try:
        path = emulator.synthesizer.path_for(bucket, key)
        return path if path.is_file() else None
    except (ValueError, OSError):
        return None


def _too_large(reason: str) -> OssError:
    return OssError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                    EC_POLICY, reason=reason)


def _policy_error(message: str, status: int = 403, code: str = "AccessDenied",
                  reason: str | None = None) -> OssError:
    return OssError(status, code, message, EC_POLICY, reason=reason or message)


def _malformed(reason: str = "the form is not well-formed multipart/form-data") -> OssError:
    return _policy_error("The body of your POST request is not well-formed multipart/form-data.",
                         400, "InvalidArgument", reason)


# What aiohttp's multipart reader raises for a body that is not the form its Content-Type claims
# (no boundary, a bad delimiter, a part cut short, an unknown part encoding, endless headers), and
# a body that its Content-Encoding does not describe (aiohttp's RequestPayloadError).
_MALFORMED = (ValueError, RuntimeError, BadHttpMessage, web.RequestPayloadError)


async def _read_fields(request: web.Request) -> tuple[dict[str, str], BodyPartReader] | OssError:
    """The form fields before ``file``, and the ``file`` part (not read yet)."""
    reader = await request.multipart()
    fields: dict[str, str] = {}
    fields_size = 0
    part = await reader.next()
    while part is not None and isinstance(part, BodyPartReader) and part.name != "file":
        raw = bytearray()
        while chunk := await part.read_chunk(8192):
            raw += chunk
            fields_size += len(chunk)
            if fields_size > MAX_FORM_FIELDS_BYTES:  # never buffer an endless "field"
                return OssError(400, "MaxPOSTPreDataLengthExceeded",
                                "Your POST request fields preceding the upload file was too large.",
                                EC_POLICY, reason=f"the form fields before the file are over "
                                                  f"{MAX_FORM_FIELDS_BYTES} bytes")
        fields[part.name or ""] = part.decode(bytes(raw)).decode("utf-8", "replace")
        part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader):
        return _malformed("the form has no file part")
    return fields, part


@endpoint("upload")
async def upload(request: web.Request) -> web.Response:
    """PostObject as the SDK sends it: signed policy fields first, ``file`` last (api-facts §9)."""
    emulator = request.app[EMULATOR]
    if not request.content_type.startswith("multipart/form-data"):
        return oss_error(request, _policy_error(
            "Form content type is not multipart/form-data.", 400, "InvalidArgument",
            f"Content-Type is {request.content_type!r}, not multipart/form-data"))
    # The file may be as large as a policy allows; the form, no more than that plus its fields.
    form_cap = UPLOAD_MAX_BYTES + MAX_FORM_FIELDS_BYTES
    if (request.content_length or 0) > form_cap:
        return oss_error(request, _too_large(f"the form is {request.content_length} bytes, over "
                                             f"the largest grant plus fields ({form_cap})"))
    try:
        form = await _read_fields(request)
    except _MALFORMED as exc:
        form = _malformed(f"the form is not well-formed multipart/form-data ({exc})"[:200])
    if isinstance(form, OssError):
        return oss_error(request, form)
    fields, part = form

    document = emulator.oss.read_policy(fields.get("policy", ""), fields.get("Signature", ""))
    if document is None or fields.get("OSSAccessKeyId") != emulator.oss.access_key_id:
        why = ("OSSAccessKeyId is not this emulator's" if document is not None else
               "the policy's Signature does not match it (changed, or from another run)")
        return oss_error(request, OssError(
            403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method.", EC_POLICY, reason=why))
    key = fields.get("key", "")
    bad_key = invalid_key_reason(key)
    if bad_key is not None:
        return oss_error(request, OssError(400, "InvalidObjectName",
                                           "The specified object is not valid.",
                                           EC_INVALID_OBJECT_NAME, (("ObjectName", key),),
                                           reason=f"object key {key[:80]!r}: {bad_key}"))
    upload_dir = _policy_prefix(document)
    policy = emulator.store.get_policy(upload_dir) if upload_dir else None
    if policy is None:
        return oss_error(request, _policy_error(
            "Invalid according to Policy: Policy expired.", reason="no upload grant for "
            f"{upload_dir!r} (expired 300 s after getPolicy and removed, or reset)"))
    if emulator.clock.now() >= policy.expires:
        return oss_error(request, _policy_error(
            "Invalid according to Policy: Policy expired.",
            reason=f"the upload grant expired at {policy.expires.isoformat()} (300 s after "
                   "getPolicy; virtual clock)"))
    bucket = REGIONS[policy.region].upload_bucket
    if request.path.strip("/") != bucket:
        # A grant is for its region's upload bucket only (it is bound to that region's account).
        return oss_error(request, _policy_error(
            f'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "{bucket}"]',
            reason=f"the grant is for {policy.region}'s upload bucket {bucket}, not "
                   f"{request.path.strip('/')}"))
    for name, wanted in _field_conditions(document):
        # A form field the grant fixes (x-oss-object-acl: private, x-oss-forbid-overwrite: true)
        # sent with another value; the text is the one real OSS answered for a public-read ACL.
        if name in fields and fields[name] != wanted:
            return oss_error(request, _policy_error(
                f'Invalid according to Policy: Policy Condition failed: ["eq","${name}","{wanted}"]',
                reason=f"the grant fixes {name} to {wanted!r}; the form sent {fields[name]!r}"))
    # Keys are stored as files: "", "." and ".." segments would alias or escape another path
    # (a trailing "/" even turned the upload_dir into a file and broke every later upload).
    names = key[len(upload_dir) + 1:].split("/")
    try:
        target = path_inside(emulator.oss.root / "uploads", key)
    except (ValueError, OSError):
        target = None
    if (target is None or not key.startswith(upload_dir + "/")
            or any(n in ("", ".", "..") for n in names)):
        return oss_error(request, _policy_error(
            f'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", '
            f'"{upload_dir}"]', reason=f"the key {key[:80]!r} is not a plain path inside the "
                                       f"granted directory {upload_dir!r}"))
    if emulator.store.get_upload(key) is not None and fields.get("x-oss-forbid-overwrite") == "true":
        return oss_error(request, OssError(409, "FileAlreadyExists",
                                           "The object you specified already exists and can not "
                                           "be overwritten.", "0016-00000708", reason=(
            f"{key[:80]!r} was uploaded already and the form says x-oss-forbid-overwrite")))

    try:
        size = await _stream_to_file(part, target, policy.max_bytes)
    except _MALFORMED as exc:
        return oss_error(request, _malformed(f"the file part is cut short ({exc})"[:200]))
    if size is None:
        return oss_error(request, _too_large(f"the file is over its grant's {policy.max_bytes} "
                                             "bytes"))
    content_type = fields.get("x-oss-content-type") or "application/octet-stream"
    _record_upload(request, policy, key, size, content_type)
    status = fields.get("success_action_status", "204")
    return web.Response(status=int(status) if status in ("200", "201", "204") else 204,
                        headers={"x-oss-request-id": new_oss_request_id(), "ETag": '"0"'})


def _record_upload(request: web.Request, policy: UploadPolicy, key: str, size: int,
                   content_type: str) -> Upload:
    emulator = request.app[EMULATOR]
    upload = Upload(key=key, account_id=policy.account_id, region=policy.region, model=policy.model,
                    path=str(emulator.oss.root / "uploads" / key), size=size,
                    content_type=content_type, created=emulator.clock.now())
    emulator.store.add_upload(upload)
    return upload


def _field_conditions(document: dict) -> list[tuple[str, str]]:
    """The policy's ``{"<form field>": "<value>"}`` conditions, other than the bucket's."""
    return [(name, str(value)) for condition in document.get("conditions", [])
            if isinstance(condition, dict) for name, value in condition.items() if name != "bucket"]


def _policy_prefix(document: dict) -> str:
    for condition in document.get("conditions", []):
        if isinstance(condition, list) and condition[:2] == ["starts-with", "$key"]:
            return str(condition[2])
    return ""


async def _stream_to_file(part: BodyPartReader, target: Path, max_bytes: int) -> int | None:
    """Write the file part to a temp name, then rename; None (and nothing kept) if over the limit."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: target.parent.mkdir(parents=True, exist_ok=True))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise _TooLarge
                await loop.run_in_executor(None, out.write, chunk)
        if not part.at_eof():  # the body ended before the part's closing delimiter: cut short
            raise ValueError("file part cut short")
        await loop.run_in_executor(None, os.replace, tmp, target)
        return size
    except _TooLarge:
        os.unlink(tmp)
        return None
    except BaseException:
        os.unlink(tmp)
        raise


class _TooLarge(Exception):
    pass
