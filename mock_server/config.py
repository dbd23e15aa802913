"""Everything an emulator instance is configured with, as one value the app factory takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .api.image_fetch import UrlRules
from .api.image_intake import DOWNLOAD_TIMEOUT_SECONDS, LocalUrls
from .assets.asset_map import AssetMapping
from .tasks.accounts import KeySpec
from .traffic.journal import DEFAULT_MAX_BYTES as JOURNAL_MAX_BYTES
from .traffic.journal import DEFAULT_SIZE as JOURNAL_SIZE
from .traffic.quotas import POLICY_QPS, QUERY_QPS


@dataclass
class Settings:
    host: str = "127.0.0.1"
    beijing_port: int = 18100
    singapore_port: int = 18101
    api_keys: list[KeySpec] = field(default_factory=list)
    # None: a temporary directory removed at shutdown, state in memory (nothing survives).
    data_dir: Path | None = None
    # With a data_dir: True keeps the state in memory anyway (only clips and uploads go there);
    # False keeps it in a SQLite store there, so it survives restarts (README, "Persistence").
    in_memory: bool = False
    # None (default): task ids, timelines, drawn seeds and prompts are random, like the real
    # service's (ids never repeat across resets or restarts); a number makes them reproducible.
    seed: int | None = None
    timing: str = "fast"
    ready_file: Path | None = None
    # None: the documented per-model cap (2). ASSUMPTION, see docs/assumptions.md.
    max_running: int | None = None
    render_workers: int = 2
    render_preset: str = "veryfast"
    # Finished clips kept for identical requests (tasks/clip_cache.py), in MiB; 0: no cache.
    clip_cache_mb: int = 1024
    clock_start: datetime | None = None
    clock_frozen: bool = False
    log_requests: bool = True
    # Bodies over this get 413 BadRequest.TooLarge (two 10 MB images as base64 fit comfortably).
    max_body_bytes: int = 64 * 1024 * 1024
    # Image URL downloads give up after this many seconds (400 "...timed out..." at submit).
    download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS
    # Rate quotas like the real service (traffic/quotas.py); off: no 429s from rates, ever.
    quotas: bool = True
    # None: each model's documented submit rate (2 per second per account).
    submit_rps: int | None = None
    query_qps: int = QUERY_QPS
    policy_qps: int = POLICY_QPS
    # In-band scenarios (X-Mock-Scenario header, [mock:<name>] prompt directive); off: ignored.
    scenarios: bool = True
    journal_size: int = JOURNAL_SIZE
    # The journal's memory bound (estimated bytes of headers and bodies kept); oldest go first.
    journal_max_bytes: int = JOURNAL_MAX_BYTES
    # Image URL address rules (api/image_fetch.py; README "Isolation and safety"): private ranges are
    # refused unless allowed; loopback is allowed unless denied (fixtures served on this machine).
    allow_private_image_urls: bool = False
    allow_loopback_image_urls: bool = True
    # /_mock/ answers loopback peers only; with a token, other peers that send it in
    # X-Mock-Admin-Token too (admin/access.py).
    admin_token: str | None = None
    # Image URLs answered from this machine (api/image_intake.py, README "Sample frames and your
    # own images"): a user's URL prefixes mapped to directories, and the API document's two sample
    # URLs (served from the built-in frames unless turned off).
    asset_map: list[AssetMapping] = field(default_factory=list)
    doc_sample_urls: bool = True
    # The intercepting proxy (proxy/; README "Clients you cannot change"): None = off, 0 = a free
    # port. Loopback unless told otherwise. Its CA lives in ca_dir, else DATA_DIR/ca, else a
    # per-user directory (proxy/authority.py).
    proxy_port: int | None = None
    proxy_host: str = "127.0.0.1"
    ca_dir: Path | None = None
    # A seeded chaos run (traffic/chaos.py): every create takes hard paths drawn from this seed's
    # schedule with this profile; None: off.
    chaos_seed: int | None = None
    chaos_profile: str = "default"
    # Slow and stuck clients (timeouts.py; README "Slow and stuck clients"), in seconds: a
    # request's line and headers from its first byte; a connection idle between requests; a
    # request body arriving, without a byte.
    header_timeout: float = 20.0
    idle_timeout: float = 75.0
    body_timeout: float = 60.0
    # False (--no-render, for benchmarks): no frames kept and no clip rendered; a task counts as
    # rendered at once and its result link answers 404.
    render: bool = True

    def image_url_rules(self) -> UrlRules:
        return UrlRules(allow_private=self.allow_private_image_urls,
                        allow_loopback=self.allow_loopback_image_urls)

    def local_urls(self) -> LocalUrls:
        return LocalUrls(asset_map=tuple(self.asset_map), doc_samples=self.doc_sample_urls)
