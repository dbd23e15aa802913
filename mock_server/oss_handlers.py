"""The emulator's OSS stand-in over HTTP: signed result downloads (GET/HEAD, Range) and the
temporary-upload POST the SDK sends to ``upload_host``. Errors are OSS XML, not DashScope JSON."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, web

from .appkeys import EMULATOR, ERROR_CODE
from .oss import EC_NO_SUCH_KEY, EC_POLICY, OssError, error_xml, new_oss_request_id
from .responses import record_upload


def oss_error(request: web.Request, error: OssError) -> web.Response:
    request_id = new_oss_request_id()
    request[ERROR_CODE] = error.code  # for the request journal
    body = error_xml(error, request_id, request.host)
    return web.Response(status=error.status, text=body if request.method != "HEAD" else None,
                        content_type="application/xml", charset="utf-8",
                        headers={"x-oss-request-id": request_id, "x-oss-ec": error.ec})


async def download(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    error = emulator.oss.check_link(bucket, key, dict(request.query), emulator.clock.now(),
                                    request.host)
    if error is not None:
        return oss_error(request, error)
    try:
        path = emulator.synthesizer.path_for(bucket, key)
    except ValueError:
        path = None
    if path is None or not await asyncio.get_running_loop().run_in_executor(None, path.is_file):
        return oss_error(request, OssError(404, "NoSuchKey", "The specified key does not exist.",
                                           EC_NO_SUCH_KEY, (("Key", key),)))
    return web.FileResponse(path, headers={"Content-Type": "video/mp4",
                                           "x-oss-request-id": new_oss_request_id()})


def _policy_error(message: str, status: int = 403, code: str = "AccessDenied") -> OssError:
    return OssError(status, code, message, EC_POLICY)


async def upload(request: web.Request) -> web.Response:
    """PostObject as the SDK sends it: signed policy fields first, ``file`` last (api-facts §9)."""
    emulator = request.app[EMULATOR]
    if not request.content_type.startswith("multipart/form-data"):
        return oss_error(request, _policy_error("Form content type is not multipart/form-data.",
                                                400, "InvalidArgument"))
    reader = await request.multipart()
    fields: dict[str, str] = {}
    part = await reader.next()
    while part is not None and isinstance(part, BodyPartReader) and part.name != "file":
        fields[part.name or ""] = (await part.read(decode=True)).decode("utf-8", "replace")
        part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader):
        return oss_error(request, _policy_error("The body of your POST request is not well-formed "
                                                "multipart/form-data.", 400, "InvalidArgument"))

    document = emulator.oss.read_policy(fields.get("policy", ""), fields.get("Signature", ""))
    if document is None or fields.get("OSSAccessKeyId") != emulator.oss.access_key_id:
        return oss_error(request, OssError(
            403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method.", EC_POLICY))
    key = fields.get("key", "")
    upload_dir = _policy_prefix(document)
    policy = emulator.store.get_policy(upload_dir) if upload_dir else None
    if policy is None:
        return oss_error(request, _policy_error("Invalid according to Policy: Policy expired."))
    if emulator.clock.now() >= policy.expires:
        return oss_error(request, _policy_error("Invalid according to Policy: Policy expired."))
    # Keys are stored as files: "", "." and ".." segments would alias or escape another path
    # (a trailing "/" even turned the upload_dir into a file and broke every later upload).
    names = key[len(upload_dir) + 1:].split("/")
    if not key.startswith(upload_dir + "/") or any(n in ("", ".", "..") for n in names):
        return oss_error(request, _policy_error(
            f'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", '
            f'"{upload_dir}"]'))
    if emulator.store.get_upload(key) is not None and fields.get("x-oss-forbid-overwrite") == "true":
        return oss_error(request, OssError(409, "FileAlreadyExists",
                                           "The object you specified already exists and can not "
                                           "be overwritten.", "0016-00000708"))

    target = emulator.oss.root / "uploads" / key
    size = await _stream_to_file(part, target, policy.max_bytes)
    if size is None:
        return oss_error(request, OssError(400, "EntityTooLarge", "Your proposed upload exceeds "
                                           "the maximum allowed size.", EC_POLICY))
    content_type = fields.get("x-oss-content-type") or "application/octet-stream"
    record_upload(request, policy, key, size, content_type)
    status = fields.get("success_action_status", "204")
    return web.Response(status=int(status) if status in ("200", "201", "204") else 204,
                        headers={"x-oss-request-id": new_oss_request_id(), "ETag": '"0"'})


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
