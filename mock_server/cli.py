"""``kf2v-mock serve ...`` (also ``python -m mock_server serve``). Each flag can also come from an
environment variable ``KF2V_MOCK_<FLAG>`` (e.g. ``KF2V_MOCK_SEED=7``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .accounts import KeySpec
from .app import create_app, start_server
from .appkeys import EMULATOR
from .config import Settings
from .timing import PROFILES


def _env(name: str, default):
    return os.environ.get(f"KF2V_MOCK_{name.upper().replace('-', '_')}", default)


def _env_flag(name: str) -> bool:
    return str(_env(name, "")).strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kf2v-mock", description=(
        "Offline emulator of DashScope's keyframe-to-video API (wan2.2-kf2v-flash, "
        "wanx2.1-kf2v-plus / wan2.1-kf2v-plus)."))
    parser.add_argument("--version", action="version", version=f"kf2v-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve both regions until interrupted")
    defaults = Settings()
    serve.add_argument("--host", default=_env("host", defaults.host))
    serve.add_argument("--beijing-port", type=int,
                       default=int(_env("beijing-port", defaults.beijing_port)),
                       help="cn-beijing listener port (0: pick a free one)")
    serve.add_argument("--singapore-port", type=int,
                       default=int(_env("singapore-port", defaults.singapore_port)),
                       help="ap-southeast-1 listener port (0: pick a free one)")
    serve.add_argument("--api-key", action="append", default=[], metavar="REGION=KEY[@ACCOUNT]",
                       help="a key valid in REGION (repeatable); keys sharing @ACCOUNT share tasks. "
                            "A region without one gets its default key (see README)")
    serve.add_argument("--data-dir", type=Path, default=_env("data-dir", None),
                       help="where clips and uploads are written (default: a temporary directory)")
    serve.add_argument("--seed", type=int, default=int(_env("seed", defaults.seed)))
    serve.add_argument("--timing", choices=PROFILES, default=_env("timing", defaults.timing))
    serve.add_argument("--max-running", type=int, default=_env("max-running", None),
                       help="tasks RUNNING at once per account and model (default: documented 2)")
    serve.add_argument("--render-workers", type=int,
                       default=int(_env("render-workers", defaults.render_workers)))
    serve.add_argument("--ready-file", type=Path, default=_env("ready-file", None),
                       help='once both listeners accept connections, write {"cn-beijing": URL, '
                            '"ap-southeast-1": URL} here')
    serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    safety = serve.add_argument_group("isolation and safety (README, \"Isolation and safety\")")
    safety.add_argument("--admin-token", default=_env("admin-token", None),
                        help="also let non-loopback peers use /_mock/ when they send this in "
                             "X-Mock-Admin-Token (default: loopback peers only)")
    safety.add_argument("--allow-private-image-urls", action="store_true",
                        default=_env_flag("allow-private-image-urls"),
                        help="let image URLs reach private ranges (10/8, 172.16/12, 192.168/16, "
                             "100.64/10, fc00::/7)")
    safety.add_argument("--deny-loopback-image-urls", action="store_true",
                        default=_env_flag("deny-loopback-image-urls"),
                        help="refuse image URLs on this machine's loopback (allowed by default)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    keys = [KeySpec.parse(text) for text in args.api_key]
    env_keys = _env("api-keys", "")
    keys += [KeySpec.parse(text) for text in env_keys.split(",") if text.strip()]
    return Settings(
        host=args.host, beijing_port=args.beijing_port, singapore_port=args.singapore_port,
        api_keys=keys, data_dir=args.data_dir, seed=args.seed, timing=args.timing,
        max_running=int(args.max_running) if args.max_running is not None else None,
        render_workers=args.render_workers, ready_file=args.ready_file,
        log_requests=not args.quiet, admin_token=args.admin_token or None,
        allow_private_image_urls=args.allow_private_image_urls,
        allow_loopback_image_urls=not args.deny_loopback_image_urls)


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    for account in app[EMULATOR].keys.keys():
        logging.getLogger("kf2v_mock").info("key for %s: %s", account.region, account.api_key)
    runner = await start_server(app, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kf2v_mock").info("kf2v-mock %s, timing %s, seed %s", __version__,
                                        settings.timing, settings.seed)
    asyncio.run(serve(settings))
    return 0
