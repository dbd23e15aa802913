"""``kf2v-mock serve ...`` (also ``python -m mock_server serve``). Each flag can also come from an
environment variable ``KF2V_MOCK_<FLAG>`` (e.g. ``KF2V_MOCK_SEED=7``).

``kf2v-mock run [serve flags] -- COMMAND ...`` is the one-step CI recipe: serve on free ports, run
COMMAND with the SDK's environment pointed at the emulator, stop, and exit with COMMAND's status.
With ``--intercept`` the command keeps its production URLs and goes through the intercepting proxy.

``kf2v-mock ca`` prints the local CA's path and how each kind of client trusts it.

``kf2v-mock report`` prints a running emulator's client report card; the report and chaos flags
live in ``cli_report.py``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__, logs
from .app import base_urls, create_app, start_server
from .cli_report import (add_chaos_arguments, add_report_arguments, after_run,
                         build_report_parser, check_report_arguments, report_main)
from .config import Settings
from .media.render import X264_PRESETS
from .pipeline.keys import EMULATOR
from .proxy.authority import CaError, CertificateAuthority, ca_dir_for
from .proxy.clients import intercept_environment, trust_instructions
from .proxy.listener import proxy_site
from .store.sqlite import DataDirError
from .tasks.accounts import KeySpec
from .tasks.regions import BEIJING, REGIONS, SINGAPORE
from .tasks.timelines import PROFILES

log = logging.getLogger("kf2v_mock")
RUN_USAGE = "kf2v-mock run [--region REGION] [serve flags ...] -- COMMAND [ARG ...]"


def _env(name: str, default):
    return os.environ.get(f"KF2V_MOCK_{name.upper().replace('-', '_')}", default)


def _env_flag(name: str) -> bool:
    return str(_env(name, "")).strip().lower() in ("1", "true", "yes", "on")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


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
    serve.add_argument("--no-quotas", action="store_true", default=_env_flag("no-quotas"),
                       help="no rate quotas (429 Throttling.RateQuota) at all")
    serve.add_argument("--submit-rps", type=_positive_int, default=_env("submit-rps", None),
                       help="task submits per second per account and model (default: documented 2)")
    serve.add_argument("--query-qps", type=_positive_int,
                       default=int(_env("query-qps", defaults.query_qps)),
                       help="query/list/cancel requests per second per account (default: 20)")
    serve.add_argument("--policy-qps", type=_positive_int,
                       default=int(_env("policy-qps", defaults.policy_qps)),
                       help="getPolicy requests per second per account and model (default: 100)")
    serve.add_argument("--no-scenarios", action="store_true", default=_env_flag("no-scenarios"),
                       help="ignore X-Mock-Scenario headers and [mock:...] prompt directives")
    serve.add_argument("--quiet", action="store_true",
                       help="no per-request or per-task log lines")
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
    rendering = serve.add_argument_group("clip rendering (README, \"Performance\")")
    rendering.add_argument("--render-preset", choices=X264_PRESETS,
                           default=_env("render-preset", defaults.render_preset),
                           help="x264 preset of the clips (default: veryfast; ultrafast renders "
                                "about 2x faster into about 3x larger files)")
    rendering.add_argument("--clip-cache-mb", type=_non_negative_int,
                           default=_env("clip-cache-mb", str(defaults.clip_cache_mb)),
                           help="keep up to this many MiB of finished clips under the data dir, so "
                                "identical requests render once (0: no cache; default: 1024)")
    add_proxy_arguments(serve)
    add_chaos_arguments(serve)
    logging_flags = serve.add_argument_group("logging (README, \"See what happened\")")
    logging_flags.add_argument("--log-level", choices=logs.LEVELS,
                               default=str(_env("log-level", "info")).lower(),
                               help="the least severe lines shown (default: info)")
    logging_flags.add_argument("--log-format", choices=logs.FORMATS,
                               default=str(_env("log-format", "text")).lower(),
                               help="text lines (default) or one JSON object per line")
    benchmarks = serve.add_argument_group("benchmarks")
    benchmarks.add_argument("--no-render", action="store_true", default=_env_flag("no-render"),
                            help="keep no frames and render no clips: tasks succeed without a "
                                 "video (result links answer 404); for benchmarks of everything "
                                 "else (benchmarks/bench_scale.py)")
    # Listed for --help; main() hands "run" to run_main(), which reuses the serve flags above.
    commands.add_parser("run", usage=RUN_USAGE, add_help=False,
                        help="serve on free ports, run COMMAND against it, stop; exit with its status")
    add_ca_command(commands)
    commands.add_parser("report", add_help=False, parents=[build_report_parser()],
                        help="print the client report card of a running emulator")
    return parser


def build_run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kf2v-mock run", usage=RUN_USAGE, description=(
        "Serve both regions (on free ports unless --beijing-port/--singapore-port say otherwise), "
        "run COMMAND with DASHSCOPE_HTTP_BASE_URL, DASHSCOPE_BASE_URL and DASHSCOPE_API_KEY pointed "
        "at the emulator (plus KF2V_MOCK_BEIJING_URL and KF2V_MOCK_SINGAPORE_URL), then stop and "
        "exit with COMMAND's status. Every `kf2v-mock serve` flag is accepted."))
    parser.add_argument("--region", choices=list(REGIONS), default=BEIJING,
                        help="the region DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point at")
    parser.add_argument("--intercept", action="store_true", default=_env_flag("intercept"),
                        help="start the intercepting proxy (on a free port unless --proxy-port) "
                             "and give COMMAND the proxy and CA variables instead of base URLs: "
                             "code calling https://dashscope.aliyuncs.com works unchanged")
    add_report_arguments(parser)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    if args.render_preset not in X264_PRESETS:  # argparse checks choices on the command line only
        raise ValueError(f"KF2V_MOCK_RENDER_PRESET: {args.render_preset!r} is not one of "
                         f"{', '.join(X264_PRESETS)}")
    keys = [KeySpec.parse(text) for text in args.api_key]
    env_keys = _env("api-keys", "")
    keys += [KeySpec.parse(text) for text in env_keys.split(",") if text.strip()]
    return Settings(
        host=args.host, beijing_port=args.beijing_port, singapore_port=args.singapore_port,
        api_keys=keys, data_dir=args.data_dir, in_memory=args.in_memory, seed=args.seed,
        timing=args.timing,
        max_running=int(args.max_running) if args.max_running is not None else None,
        render_workers=args.render_workers, ready_file=args.ready_file,
        log_requests=not args.quiet, quotas=not args.no_quotas,
        submit_rps=int(args.submit_rps) if args.submit_rps is not None else None,
        query_qps=args.query_qps, policy_qps=args.policy_qps, scenarios=not args.no_scenarios,
        admin_token=args.admin_token or None,
        allow_private_image_urls=args.allow_private_image_urls,
        allow_loopback_image_urls=not args.deny_loopback_image_urls,
        render_preset=args.render_preset, clip_cache_mb=args.clip_cache_mb, **proxy_settings(args),
        chaos_seed=args.chaos, chaos_profile=args.chaos_profile, render=not args.no_render)


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


def command_environment(base: dict[str, str], urls: dict[str, str], api_key: str,
                        region: str) -> dict[str, str]:
    """``base`` with the SDK (1.x and the 2.0 client) pointed at ``region``'s listener."""
    env = dict(base)
    env.update(DASHSCOPE_HTTP_BASE_URL=urls[region], DASHSCOPE_BASE_URL=urls[region],
               DASHSCOPE_API_KEY=api_key, KF2V_MOCK_BEIJING_URL=urls[BEIJING],
               KF2V_MOCK_SINGAPORE_URL=urls[SINGAPORE])
    for name in ("NO_PROXY", "no_proxy"):  # loopback never goes through the user's proxy
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1,localhost"]))
    return env


async def run_command(settings: Settings, command: list[str], region: str,
                      intercept: bool = False, run_args: argparse.Namespace | None = None) -> int:
    app = create_app(settings)
    runner = await start_server(app, settings)
    try:
        emulator = app[EMULATOR]
        env = command_environment(dict(os.environ), base_urls(emulator), emulator.keys.default_key(region),
                                  region)
        if intercept:
            env = intercepted_environment(env, runner)
        try:
            process = await asyncio.create_subprocess_exec(*command, env=env)
        except OSError as exc:
            log.error("cannot run %s: %s", command[0], exc)
            return 127  # the shell's "command not found"
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # the command decides how to stop
            loop.add_signal_handler(sig, process.send_signal, sig)
        code = await process.wait()
        code = code if code >= 0 else 128 - code  # killed by a signal: the shell's convention
        if run_args is not None:  # the report card and the chaos schedule (cli_report.py)
            code = await after_run(emulator, run_args, code)
        return code
    finally:
        await runner.cleanup()


def run_main(argv: list[str]) -> int:
    parser = build_run_parser()
    if "--" not in argv:
        parser.error("give the command to run after --")
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    run_args, serve_flags = parser.parse_known_args(own)
    if not command:
        parser.error("give the command to run after --")
    check_report_arguments(parser, run_args)
    # Free ports unless the flags (or KF2V_MOCK_*_PORT) say otherwise; later flags win in argparse.
    ports = ["--beijing-port", _env("beijing-port", "0"), "--singapore-port", _env("singapore-port", "0")]
    serve_parser = build_parser()
    args = serve_parser.parse_args(["serve", *ports, *serve_flags])
    if run_args.intercept and args.proxy_port is None:
        args.proxy_port = 0
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    _setup_logging(settings, args)
    try:
        return asyncio.run(run_command(settings, command, run_args.region, run_args.intercept,
                                       run_args))
    except (DataDirError, CaError) as exc:
        log.error("%s", exc)
        return 1


def _setup_logging(settings: Settings, args: argparse.Namespace) -> None:
    logs.setup(args.log_level, args.log_format, quiet=args.quiet)
    log.info("kf2v-mock %s, timing %s, seed %s", __version__, settings.timing, settings.seed)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        return run_main(argv[1:])
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ca":
        return ca_main(args)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    _setup_logging(settings, args)
    try:
        asyncio.run(serve(settings))
    except (DataDirError, CaError) as exc:
        log.error("%s", exc)
        return 1
    return 0


# --- the intercepting proxy and its CA (README, "Clients you cannot change") -----------------------
def add_proxy_arguments(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group('intercepting proxy (README, "Clients you cannot change")')
    port = _env("proxy-port", None)
    group.add_argument("--proxy-port", type=int, default=int(port) if port not in (None, "") else None,
                       help="also listen as an HTTP proxy that answers the real DashScope and OSS "
                            "hostnames (CONNECT + TLS with a local CA) and refuses every other "
                            "host; 0 picks a free port (default: off)")
    group.add_argument("--proxy-host", default=_env("proxy-host", "127.0.0.1"),
                       help="the proxy's address (default: loopback only)")
    group.add_argument("--ca-dir", type=Path, default=_env("ca-dir", None),
                       help="where the local CA is kept (default: DATA_DIR/ca, or without "
                            "--data-dir a per-user directory, see `kf2v-mock ca`)")


def proxy_settings(args: argparse.Namespace) -> dict:
    return {"proxy_port": args.proxy_port, "proxy_host": args.proxy_host, "ca_dir": args.ca_dir}


def add_ca_command(commands) -> None:
    ca = commands.add_parser("ca", help="print the local CA's path and how to trust it",
                             description="Print the intercepting proxy's CA certificate path (made "
                                         "on first use) and how each kind of client trusts it.")
    ca.add_argument("--data-dir", type=Path, default=_env("data-dir", None),
                    help="the CA of this data dir (DATA_DIR/ca)")
    ca.add_argument("--ca-dir", type=Path, default=_env("ca-dir", None),
                    help="the CA kept in this directory")
    ca.add_argument("--path", action="store_true",
                    help="print only the CA file's path (e.g. SSL_CERT_FILE=$(kf2v-mock ca --path))")


def ca_main(args: argparse.Namespace) -> int:
    try:
        authority = CertificateAuthority.open(ca_dir_for(args.ca_dir, args.data_dir))
    except CaError as exc:
        print(f"kf2v-mock ca: {exc}", file=sys.stderr)
        return 1
    print(authority.cert_path if args.path else trust_instructions(authority), end="\n" if args.path else "")
    return 0


def intercepted_environment(env: dict[str, str], runner) -> dict[str, str]:
    """``env`` for ``run --intercept``: the proxy and CA variables, and the SDK's base URLs as the
    user had them (unset: the production defaults), so the command calls the real hostnames."""
    site = proxy_site(runner)
    assert site is not None  # run_main turned the proxy on
    for name in ("DASHSCOPE_HTTP_BASE_URL", "DASHSCOPE_BASE_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
        else:
            env.pop(name, None)
    return intercept_environment(env, site.url, site.authority)
