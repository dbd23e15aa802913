"""Answers as the service writes them: JSON bodies, and DashScope errors as JSON."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..tasks.errors import DashScopeError

# ensure_ascii=False like the service: zh prompts come back as UTF-8, not \u escapes. One encoder
# for every answer (json.dumps with options builds a new one per call).
_JSON = json.JSONEncoder(ensure_ascii=False)


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    # Always application/json: the aio SDK refuses a 200 without it (sdk-wire-contract §0.6).
    text = _JSON.encode(body)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate a client sent (a fault rule): \u-escaped
        data = json.dumps(body).encode("ascii")
    return web.Response(body=data, status=status, content_type="application/json",
                        charset="utf-8")


def error_response(error: DashScopeError, request_id: str) -> web.Response:
    response = json_response(error.body(request_id), status=error.status)
    response.headers.update(error.headers)
    return response
