"""OSS's answers when it refuses: the XML error body, its ``EC`` codes and request ids (api-facts §8,
§9). The stand-in's handlers and the signing checks return an ``OssError``; ``error_xml`` writes it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
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
    # Why, in the emulator's words (never in the XML): the log, the journal, X-Kf2v-Mock-Reason.
    reason: str | None = field(default=None, compare=False)

    def because(self, reason: str) -> "OssError":
        return replace(self, reason=reason)


def signature_mismatch(signature: str) -> OssError:
    return OssError(403, "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.",
                    EC_SIGNATURE_MISMATCH, (("SignatureProvided", signature),))


def iso_time(when: datetime) -> str:
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
