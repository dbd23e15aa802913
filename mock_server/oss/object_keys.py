"""Which object keys the OSS stand-in accepts, and where on disk an accepted upload key lives.

OSS's own naming rules (UTF-8, 1-1023 bytes, not starting with ``/`` or ``\\``) plus the
emulator's, because it stores each object as a file under the data dir: no NUL or other control
characters, no empty, ``.`` or ``..`` segments (checked with the policy condition), and no segment
over 255 bytes (a file-name limit; real OSS has none: ASSUMPTION, see docs/assumptions.md).
"""

from __future__ import annotations

from pathlib import Path

MAX_KEY_BYTES = 1023
# ASSUMPTION: OSS's EC for InvalidObjectName is not in our sources.
EC_INVALID_OBJECT_NAME = "0016-00000005"
MAX_SEGMENT_BYTES = 255


def invalid_key_reason(key: str) -> str | None:
    """Why ``key`` cannot be an object name here, or None."""
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from undecodable form bytes
        return "not UTF-8"
    if not 1 <= len(encoded) <= MAX_KEY_BYTES:
        return "length"
    if key[0] in "/\\":
        return "leading slash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return "control character"
    if any(len(segment.encode()) > MAX_SEGMENT_BYTES for segment in key.split("/")):
        return "segment too long"
    return None


def path_inside(root: Path, key: str) -> Path:
    """``root / key``, refusing (ValueError) anything that would resolve outside ``root``
    (defence in depth: keys are validated before they get here)."""
    base = root.resolve()
    path = (base / key).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ValueError("object key escapes its directory")
    return path
