"""``--asset-map URL_PREFIX=DIR``: a user's own image URLs (their CDN's) answered from files on
this machine. ``https://cdn.example.com/img/=./frames`` makes
``https://cdn.example.com/img/a/b.png?x=1`` the file ``./frames/a/b.png`` (query and fragment
dropped, the path percent-decoded); the longest matching prefix wins. A mapped URL is never
fetched: a file that is missing, or a path that would leave DIR, is answered like a download
that failed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class AssetMapping:
    prefix: str  # "scheme://host[:port]/path/": lower-case scheme and host, ends with "/"
    directory: Path

    @classmethod
    def parse(cls, text: str) -> "AssetMapping":
        """``URL_PREFIX=DIR``; raises ValueError saying what is wrong."""
        prefix, sep, directory = text.partition("=")
        if not sep or not prefix or not directory:
            raise ValueError(f"wants URL_PREFIX=DIR, got {text!r}")
        normalised = _normalise(prefix)
        if normalised is None:
            raise ValueError(f"{prefix!r} is not an http:// or https:// URL prefix")
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise ValueError(f"{directory!r} is not a directory")
        return cls(normalised, path.resolve())

    def __str__(self) -> str:
        return f"{self.prefix}={self.directory}"


def _normalise(url: str, *, as_prefix: bool = True) -> str | None:
    """``scheme://host[:port]/path`` with the scheme and host in lower case, without query or
    fragment; a prefix also ends with ``/``. None for anything but an http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    path = parts.path or "/"
    if as_prefix and not path.endswith("/"):
        path += "/"
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def find(url: str, mappings: tuple[AssetMapping, ...] | list[AssetMapping]) -> Path | None | bool:
    """Where ``url`` is kept locally: the file's path; ``False`` when a mapping covers the URL but
    has no such file (or the path would leave its directory); ``None`` when no mapping covers it."""
    target = _normalise(url, as_prefix=False) if mappings else None
    if target is None:
        return None
    best = max((m for m in mappings if target.startswith(m.prefix)), key=lambda m: len(m.prefix),
               default=None)
    if best is None:
        return None
    relative = unquote(target[len(best.prefix):])
    if not relative or "\x00" in relative:
        return False
    try:
        path = (best.directory / relative).resolve()
        found = path.is_relative_to(best.directory) and path.is_file()
    except (OSError, ValueError):
        return False
    return path if found else False
