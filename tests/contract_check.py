"""Every answer the emulator's own tests receive is checked against contract/openapi.yaml.

tests/conftest.py installs ``contract_middleware`` as the outermost middleware of every app the
tests create (``make_client`` and ``live_server``), so it sees the final response, errors included.
A violation is recorded here, and the test that caused it fails (the ``pytest_runtest_call``
wrapper in conftest.py), with the operation, status and the schema's complaint.
"""

from __future__ import annotations

import json
import threading

from aiohttp import web

from contract.schema import load_contract

_lock = threading.Lock()
_violations: list[str] = []


def take_violations() -> list[str]:
    with _lock:
        found = list(_violations)
        _violations.clear()
    return found


def _record(found: list[str]) -> None:
    with _lock:
        _violations.extend(found)


def check_response(method: str, path: str, response: web.StreamResponse) -> list[str]:
    """What is wrong with ``response`` according to the contract ([] if nothing)."""
    if path.startswith("/_mock/"):  # the admin API is ours, not the real service's
        return []
    if (not isinstance(response, web.Response) or method == "HEAD"
            or not isinstance(response.body, (bytes, bytearray)) or not response.body):
        return []  # files (result videos) and bodiless answers
    contract = load_contract()
    body = bytes(response.body)
    if response.content_type == "application/json":
        try:
            document = json.loads(body)
        except ValueError as exc:
            return [f"{method} {path} {response.status}: not JSON ({exc})"]
        return contract.json_errors(method, path, response.status, document)
    if response.content_type == "application/xml" and response.status >= 400:
        return [f"{method} {path} {e}" for e in
                contract.xml_errors(response.status, body.decode("utf-8", "replace"))]
    if path.startswith("/api/v1/"):
        return [f"{method} {path} {response.status}: {response.content_type}, not application/json"]
    return []


@web.middleware
async def contract_middleware(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    found = check_response(request.method, request.path, response)
    if found:
        _record(found)
    return response


def install(app: web.Application) -> web.Application:
    """Make ``contract_middleware`` the outermost middleware of ``app`` (before it starts)."""
    app.middlewares.insert(0, contract_middleware)
    return app
