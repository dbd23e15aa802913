"""Typed keys for what the aiohttp application carries (aiohttp's ``web.AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .emulator import Emulator

EMULATOR: web.AppKey["Emulator"] = web.AppKey("emulator")

# Per-request values the middleware sets for handlers.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
REGION: web.RequestKey[str] = web.RequestKey("region", str)
