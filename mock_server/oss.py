"""The OSS protocol pieces the emulator imitates: V1 query-string signatures for result links, POST
policies for temporary uploads, and OSS's XML error bodies (api-facts §8, §9).

The secret is made once per data dir: with a durable store it is kept there (``to_meta`` /
``from_meta``), so links and policies handed out before a restart still verify after it; an
ephemeral emulator makes a fresh one each run, so links from another run do not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

# https://help.aliyun.com/zh/oss/support/0002-00000069 : "URL签名已过期" (api-facts §8).
EC_EXPIRED = "0002-00000069"
# ASSUMPTION: OSS's EC for a query-string signature mismatch / a missing signature; not in our sources.
EC_SIGNATURE_MISMATCH = "0002-00000040"
EC_ANONYMOUS_DENIED = "0003-00000001"
EC_NO_SUCH_KEY = "0026-00000001"
EC_POLICY = "0006-00000001"


@dataclass(frozen=True)
class OssError:
    status: int
    code: str
    message: str
    ec: str
    extra: tuple[tuple[str, str], ...] = ()


@dataclass
class OssSigner:
    secret: bytes
    access_key_id: str
    root: Path

    @classmethod
    def create(cls, root: Path) -> "OssSigner":
        return cls(secret=secrets.token_bytes(32),
                   access_key_id="LTAI5t" + secrets.token_hex(9).upper()[:18], root=root)

    def to_meta(self) -> str:
        return json.dumps({"secret": base64.b64encode(self.secret).decode(),
                           "access_key_id": self.access_key_id})

    @classmethod
    def from_meta(cls, text: str, root: Path) -> "OssSigner":
        saved = json.loads(text)
        return cls(secret=base64.b64decode(saved["secret"]),
                   access_key_id=saved["access_key_id"], root=root)

    # --- result links ----------------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        digest = hmac.new(self.secret, text.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def link_signature(self, bucket: str, key: str, expires: int) -> str:
        # OSS V1: HMAC-SHA1 over "VERB\nMD5\nType\nExpires\n/bucket/key" (GET and HEAD sign alike here).
        return self._sign(f"GET\n\n\n{expires}\n/{bucket}/{key}")

    def signed_url(self, origin: str, bucket: str, key: str, expires: int) -> str:
        query = urlencode({"Expires": str(expires), "OSSAccessKeyId": self.access_key_id,
                           "Signature": self.link_signature(bucket, key, expires)})
        return f"{origin}/{bucket}/{quote(key)}?{query}"

    def check_link(self, bucket: str, key: str, query: dict[str, str], now: datetime,
                   host: str) -> OssError | None:
        """None when the link may be served; the OSS error to answer otherwise."""
        expires, signature = query.get("Expires"), query.get("Signature")
        if not expires or not signature or not query.get("OSSAccessKeyId"):
            return OssError(403, "AccessDenied",
                            "You have no right to access this object because of bucket acl.",
                            EC_ANONYMOUS_DENIED)
        try:
            expires_at = int(expires)
        except ValueError:
            return _signature_mismatch(signature)
        if now.timestamp() > expires_at:
            return OssError(403, "AccessDenied", "Request has expired.", EC_EXPIRED, (
                ("HostId", host),
                ("Expires", _iso(datetime.fromtimestamp(expires_at, timezone.utc))),
                ("ServerTime", _iso(now)),
            ))
        if (query.get("OSSAccessKeyId") != self.access_key_id
                or not _same(signature, self.link_signature(bucket, key, expires_at))):
            return _signature_mismatch(signature)
        return None

    # --- upload policies -------------------------------------------------------------------------
    def make_policy(self, upload_dir: str, expires: datetime, max_bytes: int) -> tuple[str, str]:
        """(base64 policy document, signature), the pair getPolicy hands out."""
        document = {
            "expiration": _iso(expires),
            "conditions": [["content-length-range", 0, max_bytes],
                           ["starts-with", "$key", upload_dir]],
        }
        policy = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
        return policy, self._sign(policy)

    def read_policy(self, policy: str, signature: str) -> dict | None:
        """The policy document if ``signature`` is ours for it, else None."""
        if not _same(signature or "", self._sign(policy or "")):
            return None
        try:
            return json.loads(base64.b64decode(policy))
        except (ValueError, TypeError):
            return None


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison; as bytes, because compare_digest refuses non-ASCII str (a
    signature from the query string or a form may be anything)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _signature_mismatch(signature: str) -> OssError:
    return OssError(403, "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.",
                    EC_SIGNATURE_MISMATCH, (("SignatureProvided", signature),))


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def new_oss_request_id() -> str:
    """OSS request ids are 24 upper-case hex characters."""
    return os.urandom(12).hex().upper()


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    """Escaped element text; characters XML 1.0 cannot carry (a NUL in an echoed key) are
    percent-encoded so the body stays well-formed."""
    return escape(_NOT_XML.sub(lambda m: "%{:02X}".format(ord(m.group())) if ord(m.group()) < 256
                               else "%EF%BF%BD", value))


def error_xml(error: OssError, request_id: str, host: str) -> str:
    extra = dict(error.extra)
    extra.setdefault("HostId", host)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<Error>",
             f"  <Code>{escape(error.code)}</Code>",
             f"  <Message>{escape(error.message)}</Message>",
             f"  <RequestId>{request_id}</RequestId>"]
    lines += [f"  <{k}>{_xml_text(v)}</{k}>" for k, v in extra.items()]
    if error.ec:  # OSS's older documented errors (405 MethodNotAllowed) carry no EC
        lines += [f"  <EC>{error.ec}</EC>",
                  f"  <RecommendDoc>https://api.aliyun.com/troubleshoot?q={error.ec}</RecommendDoc>"]
    lines.append("</Error>")
    return "\n".join(lines) + "\n"
