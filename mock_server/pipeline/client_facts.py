"""What the report card needs to know about one request beyond the journal's basics (the fields in
``traffic/journal.py`` ``REPORT_FIELDS``): whose key it carried, what a create asked for, what a
query answered, which result link a download used. A create's facts (its body digest) are taken
when ``request_context`` journals it (the body is not kept); every other fact is derived from what
the journal keeps anyway (headers, the answer's bytes, the query string), when the journal is first
read. Never reads a body a second time from the network (the create's is already parsed)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from ..tasks.accounts import KeyRing, bearer_key
from ..tasks.regions import REGIONS
from .bodies import OFF_LOOP_BYTES
from .keys import JSON_BODY

if TYPE_CHECKING:
    from multidict import MultiMapping


async def create_facts(request: web.Request) -> dict[str, Any]:
    """A create's own facts, taken while its body is at hand: ``async_header``, ``model``,
    ``body_digest``."""
    model, digest = await _create_body_facts(request)
    return {"async_header": request.headers.get("X-DashScope-Async", "").strip().lower()
            == "enable", "model": model, "body_digest": digest}


def client_facts(endpoint: str | None, keys: KeyRing, authorization: str | None, *,
                 answered: bool, truncated: bool, response_headers: Mapping[str, str] | None,
                 response_body: bytes | None, response_status: int | None,
                 query: "MultiMapping[str] | None", create: dict[str, Any] | None
                 ) -> dict[str, Any]:
    """The ``REPORT_FIELDS`` of one journaled request. ``answered``: an answer was sent (not a
    disconnect); ``create``: ``create_facts`` of a create."""
    facts: dict[str, Any] = dict.fromkeys(("account_id", "key_id", "key_region", "model",
                                           "body_digest", "async_header", "retry_after",
                                           "task_status", "link_expires"))
    facts["truncated"] = truncated
    _key_facts(authorization, keys, facts)
    if answered and response_headers is not None:
        facts["retry_after"] = _seconds(response_headers.get("Retry-After"))
    if endpoint == "create":
        facts.update(create or {})
    elif endpoint == "get_policy":
        facts["model"] = (query.get("model") if query is not None else None) or None
    elif endpoint == "query" and answered and not truncated:
        facts["task_status"], facts["link_expires"] = _query_answer(response_status,
                                                                    response_body)
    elif endpoint == "download":
        facts["link_expires"] = _expires_iso(query.get("Expires") if query is not None
                                             else None)
    return facts


def _key_facts(authorization: str | None, keys: KeyRing, facts: dict[str, Any]) -> None:
    key = bearer_key(authorization)
    if not key:
        return
    for region in REGIONS:
        account = keys.lookup(authorization, region)
        if account is not None:
            facts.update(account_id=account.account_id, key_id=account.api_key_id,
                         key_region=region)
            return
    facts["key_id"] = "?" + hashlib.sha256(key.encode()).hexdigest()[:8]


async def _create_body_facts(request: web.Request) -> tuple[str | None, str | None]:
    parsed = request.get(JSON_BODY)
    if parsed is None:  # never read (e.g. refused for its size first): nothing to digest
        return None, None
    raw = await request.read()  # the bytes read once already, from aiohttp's cache
    ok, body = parsed
    model = body.get("model") if ok and isinstance(body, dict) else None
    function, value = (_canonical_digest, body) if ok else (_digest, raw)
    if len(raw) >= OFF_LOOP_BYTES:  # base64 frames: megabytes to serialise and hash
        digest = await asyncio.get_running_loop().run_in_executor(None, function, value)
    else:
        digest = function(value)
    return (model if isinstance(model, str) else None), digest


def _canonical_digest(body: Any) -> str:
    # surrogatepass: a lone surrogate a client sent (valid JSON) must not break the digest.
    return _digest(json.dumps(body, sort_keys=True, ensure_ascii=False)
                   .encode("utf-8", "surrogatepass"))


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def _query_answer(status: int | None, body: bytes | None) -> tuple[str | None, str | None]:
    if status != 200 or body is None:
        return None, None
    try:
        output = json.loads(body).get("output") or {}
    except (ValueError, AttributeError):
        return None, None
    task_status = output.get("task_status")
    link = output.get("video_url")
    expires = None
    if isinstance(link, str) and link:
        expires = _expires_iso((parse_qs(urlsplit(link).query).get("Expires") or [None])[0])
    return (task_status if isinstance(task_status, str) else None), expires


def _expires_iso(text: str | None) -> str | None:
    try:
        return datetime.fromtimestamp(int(text), timezone.utc).isoformat()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
