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
from .sqlite_store import DataDirError
from .timing import PROFILES


def _env(name: str, default):
    return os.environ.get(f"KF2V_MOCK_{name.upper().replace('-', '_')}", default)


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
                       help="keep tasks, uploads, clips, fault rules and the clock here, across "
                            "restarts (default: a temporary directory, nothing kept)")
    serve.add_argument("--in-memory", action="store_true",
                       default=_env("in-memory", "").lower() in ("1", "true", "yes"),
                       help="keep state in memory even with --data-dir (only files go there)")
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
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    keys = [KeySpec.parse(text) for text in args.api_key]
    env_keys = _env("api-keys", "")
    keys += [KeySpec.parse(text) for text in env_keys.split(",") if text.strip()]
    return Settings(
        host=args.host, beijing_port=args.beijing_port, singapore_port=args.singapore_port,
        api_keys=keys, data_dir=args.data_dir, in_memory=args.in_memory, seed=args.seed,
        timing=args.timing,
        max_running=int(args.max_running) if args.max_running is not None else None,
        render_workers=args.render_workers, ready_file=args.ready_file,
        log_requests=not args.quiet)


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
    try:
        asyncio.run(serve(settings))
    except DataDirError as exc:
        logging.getLogger("kf2v_mock").error("%s", exc)
        return 1
    return 0
