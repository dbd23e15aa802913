"""OSS signing as the emulator imitates it: V1 query-string signatures for result links and POST
policies for temporary uploads (api-facts §8, §9). The errors they lead to are in ``xml_errors``.

The secret is made once per data dir: with a durable store it is kept there (``to_meta`` /
``from_meta``), so links and policies handed out before a restart still verify after it; an
ephemeral emulator makes a fresh one each run, so links from another run do not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from .xml_errors import EC_ANONYMOUS_DENIED, EC_EXPIRED, OssError, iso_time, signature_mismatch


# Signed result-link paths kept (a link is fixed once its task ends: signed when first served).
SIGNED_LINKS_KEPT = 4096


@dataclass
class OssSigner:
    secret: bytes
    access_key_id: str
    root: Path
    # (bucket, key, expires) -> "/key?Expires=...&OSSAccessKeyId=...&Signature=..."
    _signed: dict[tuple[str, str, int], str] = field(default_factory=dict, repr=False,
                                                     compare=False)

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

    def signed_url(self, bucket_url: str, bucket: str, key: str, expires: int) -> str:
        """``bucket_url`` is where the client reaches the bucket (path-style or virtual-hosted);
        the signature covers ``/bucket/key`` either way, as OSS's does. Signed on first use, then
        reused (it depends on nothing else), for the most recent links."""
        suffix = self._signed.get((bucket, key, expires))
        if suffix is None:
            query = urlencode({"Expires": str(expires), "OSSAccessKeyId": self.access_key_id,
                               "Signature": self.link_signature(bucket, key, expires)})
            suffix = f"/{quote(key)}?{query}"
            if len(self._signed) >= SIGNED_LINKS_KEPT:
                del self._signed[next(iter(self._signed))]  # the oldest
            self._signed[(bucket, key, expires)] = suffix
        return bucket_url + suffix

    def check_link(self, bucket: str, key: str, query: dict[str, str], now: datetime,
                   host: str) -> OssError | None:
        """None when the link may be served; the OSS error to answer otherwise."""
        expires, signature = query.get("Expires"), query.get("Signature")
        if not expires or not signature or not query.get("OSSAccessKeyId"):
            missing = [n for n in ("Expires", "OSSAccessKeyId", "Signature") if not query.get(n)]
            return OssError(403, "AccessDenied",
                            "You have no right to access this object because of bucket acl.",
                            EC_ANONYMOUS_DENIED).because(
                f"the link has no {', '.join(missing)}: an anonymous read of a private bucket")
        try:
            expires_at = int(expires)
        except ValueError:
            return signature_mismatch(signature).because(
                f"Expires {expires[:40]!r} is not a number, so the signature cannot match")
        if now.timestamp() > expires_at:
            expired_at = _expires_time(expires_at)
            return OssError(403, "AccessDenied", "Request has expired.", EC_EXPIRED, (
                ("HostId", host),
                ("Expires", iso_time(expired_at)),
                ("ServerTime", iso_time(now)),
            )).because(f"the link expired at {expired_at.isoformat()}; the virtual clock says "
                       f"{now.isoformat()}")
        if query.get("OSSAccessKeyId") != self.access_key_id:
            return signature_mismatch(signature).because(
                "OSSAccessKeyId is not this emulator's (a link from another run or data dir?)")
        if not _same(signature, self.link_signature(bucket, key, expires_at)):
            return signature_mismatch(signature).because(
                "the signature does not match this bucket, key and Expires (the link was changed, "
                "or signed by another run)")
        return None

    # --- upload policies -------------------------------------------------------------------------
    def make_policy(self, upload_dir: str, expires: datetime, max_bytes: int,
                    bucket: str) -> tuple[str, str]:
        """(base64 policy document, signature), the pair getPolicy hands out. The document has the
        recorded conditions, in the recorded order (real-recordings.md difference 4)."""
        document = {
            "expiration": iso_time(expires),
            "conditions": [["content-length-range", 0, max_bytes],
                           ["starts-with", "$key", upload_dir],
                           {"bucket": bucket},
                           {"x-oss-object-acl": "private"},
                           {"x-oss-forbid-overwrite": "true"}],
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


def _expires_time(expires_at: int) -> datetime:
    """``Expires`` as a time (OSS echoes it); one before the year 1 (``-99999999999999999``, which
    no datetime holds) is the earliest time there is."""
    try:
        return datetime.fromtimestamp(expires_at, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison; as bytes, because compare_digest refuses non-ASCII str (a
    signature from the query string or a form may be anything)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
