"""``kf2v-mock serve ...`` (also ``python -m mock_server serve``). Each flag can also come from an
environment variable ``KF2V_MOCK_<FLAG>`` (e.g. ``KF2V_MOCK_SEED=7``).

``kf2v-mock run [serve flags] -- COMMAND ...`` is the one-step CI recipe: serve on free ports, run
COMMAND with the SDK's environment pointed at the emulator, stop, and exit with COMMAND's status.
With ``--intercept`` the command keeps its production URLs and goes through the intercepting proxy.

``kf2v-mock ca`` prints the local CA's path and how each kind of client trusts it.

``kf2v-mock report`` prints a running emulator's client report card; the report and chaos flags
live in ``cli_report.py``.

Start-up problems are reported here, in one place, as one line saying what is wrong and how to fix
it, with exit status 2 (``StartupError``): a bad flag or ``KF2V_MOCK_*`` value (refused while the
command line is read), a data dir that cannot be used, a port that is taken, a ready file that
cannot be written. Nothing before the listeners are up prints a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

from aiohttp import web

from . import __version__, logs
from .app import ListenError, ReadyFileError, base_urls, create_app, start_server
from .assets.asset_map import AssetMapping
from .cli_report import (add_chaos_arguments, add_report_arguments, after_run,
                         build_report_parser, check_report_arguments, report_main)
from .config import Settings
from .emulator import Emulator
from .gc_tuning import ShortPauses
from .media.clip_request import X264_PRESETS
from .proxy.authority import CaError, CertificateAuthority, ca_dir_for
from .proxy.clients import intercept_environment, trust_instructions
from .proxy.listener import proxy_site
from .store.sqlite import DB_NAME, DataDirError
from .tasks.accounts import KeySpec
from .tasks.regions import BEIJING, REGIONS, SINGAPORE
from .tasks.timelines import PROFILES

log = logging.getLogger("kf2v_mock")
RUN_USAGE = "kf2v-mock run [--region REGION] [serve flags ...] -- COMMAND [ARG ...]"
EXIT_STARTUP = 2  # what argparse uses for usage errors, and so every start-up problem
ENV_PREFIX = "KF2V_MOCK_"
PORT_FLAGS = {BEIJING: "--beijing-port", SINGAPORE: "--singapore-port", "proxy": "--proxy-port"}
# Set by `kf2v-mock run` for its command, or read by `run` alone: not serve settings, not typos.
_ENV_OUTPUTS = {"KF2V_MOCK_BEIJING_URL", "KF2V_MOCK_SINGAPORE_URL", "KF2V_MOCK_PROXY_URL",
                "KF2V_MOCK_CA_FILE", "KF2V_MOCK_INTERCEPT"}


class StartupError(Exception):
    """Why kf2v-mock cannot start, as one line for the user (``main`` prints it, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one ``StartupError`` line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise StartupError(f"{message} (see {self.prog} --help)")


# --- values, from the command line or the environment ---------------------------------------------
def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.upper().replace("-", "_")


def _env(name: str, default):
    return os.environ.get(_env_name(name), default)


def _env_value(flag: str, convert, default):
    """``KF2V_MOCK_<FLAG>`` converted like the flag's own value, or ``default`` when unset; a value
    that does not convert is a start-up error naming the variable."""
    text = os.environ.get(_env_name(flag))
    if text is None:
        return default
    try:
        return convert(text)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise StartupError(f"{_env_name(flag)}={text!r}: {exc}") from None


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("not a yes/no value (use 1/0, true/false, yes/no or on/off)")


def _env_flag(name: str) -> bool:
    return _env_value(name, _boolean, False)


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _port(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 picks a free one)")
    return value


def _timing(text: str) -> str:
    if text not in PROFILES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a timing profile "
                                         f"(choose from {', '.join(PROFILES)})")
    return text


def _choice(choices):
    def convert(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return value
    return convert


def _key_spec(text: str) -> KeySpec:
    try:
        return KeySpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--api-key ")) from None


def _asset_mapping(text: str) -> AssetMapping:
    try:
        return AssetMapping.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listed(convert):
    """A comma-separated list of values (``KF2V_MOCK_API_KEYS``, ``KF2V_MOCK_ASSET_MAP``)."""
    return lambda text: [convert(part.strip()) for part in text.split(",") if part.strip()]


def unknown_env_names(environ=os.environ) -> list[str]:
    """``KF2V_MOCK_*`` variables that are no setting (typos are otherwise silently ignored)."""
    known = {_env_name(a.dest) for a in _serve_actions()} | {"KF2V_MOCK_API_KEYS",
                                                             "KF2V_MOCK_ASSET_MAP"}
    return sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known | _ENV_OUTPUTS)


def _serve_actions() -> list[argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["serve"]._actions if a.option_strings and a.dest != "help"]


# --- the command line ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kf2v-mock", description=(
        "Offline emulator of DashScope's keyframe-to-video API (wan2.2-kf2v-flash, "
        "wanx2.1-kf2v-plus / wan2.1-kf2v-plus)."))
    parser.add_argument("--version", action="version", version=f"kf2v-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve both regions until interrupted")
    defaults = Settings()
    serve.add_argument("--host", default=_env("host", defaults.host))
    serve.add_argument("--beijing-port", type=_port,
                       default=_env_value("beijing-port", _port, defaults.beijing_port),
                       help="cn-beijing listener port (0: pick a free one)")
    serve.add_argument("--singapore-port", type=_port,
                       default=_env_value("singapore-port", _port, defaults.singapore_port),
                       help="ap-southeast-1 listener port (0: pick a free one)")
    serve.add_argument("--api-key", action="append", type=_key_spec, default=[],
                       metavar="REGION=KEY[@ACCOUNT]",
                       help="a key valid in REGION (repeatable); keys sharing @ACCOUNT share tasks. "
                            "A region without one gets its default key (see README)")
    serve.add_argument("--data-dir", type=Path, default=_env("data-dir", None),
                       help="keep tasks, uploads, clips, fault rules and the clock here, across "
                            "restarts (default: a temporary directory, nothing kept)")
    serve.add_argument("--in-memory", action="store_true", default=_env_flag("in-memory"),
                       help="keep state in memory even with --data-dir (only files go there)")
    serve.add_argument("--seed", type=_whole_number,
                       default=_env_value("seed", _whole_number, defaults.seed),
                       help="make task ids, timelines, drawn seeds, prompts and clips reproducible "
                            "(the same seed gives the same ones on every run; default: random, "
                            "ids never repeat, like the real service)")
    serve.add_argument("--timing", type=_timing, choices=PROFILES,
                       default=_env_value("timing", _timing, defaults.timing))
    serve.add_argument("--max-running", type=_positive_int,
                       default=_env_value("max-running", _positive_int, None),
                       help="tasks RUNNING at once per account and model (default: documented 2)")
    serve.add_argument("--render-workers", type=_positive_int,
                       default=_env_value("render-workers", _positive_int, defaults.render_workers))
    serve.add_argument("--ready-file", type=Path, default=_env("ready-file", None),
                       help='once both listeners accept connections, write {"cn-beijing": URL, '
                            '"ap-southeast-1": URL} here (an earlier one is removed at start)')
    serve.add_argument("--no-quotas", action="store_true", default=_env_flag("no-quotas"),
                       help="no rate quotas (429 Throttling.RateQuota) at all")
    serve.add_argument("--submit-rps", type=_positive_int,
                       default=_env_value("submit-rps", _positive_int, None),
                       help="task submits per second per account and model (default: documented 2)")
    serve.add_argument("--query-qps", type=_positive_int,
                       default=_env_value("query-qps", _positive_int, defaults.query_qps),
                       help="query/list/cancel requests per second per account (default: 20)")
    serve.add_argument("--policy-qps", type=_positive_int,
                       default=_env_value("policy-qps", _positive_int, defaults.policy_qps),
                       help="getPolicy requests per second per account and model (default: 100)")
    serve.add_argument("--no-scenarios", action="store_true", default=_env_flag("no-scenarios"),
                       help="ignore X-Mock-Scenario headers and [mock:...] prompt directives")
    serve.add_argument("--quiet", action="store_true", default=_env_flag("quiet"),
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
    rendering.add_argument("--render-preset", type=_choice(X264_PRESETS), choices=X264_PRESETS,
                           default=_env_value("render-preset", _choice(X264_PRESETS),
                                              defaults.render_preset),
                           help="x264 preset of the clips (default: veryfast; ultrafast renders "
                                "about 2x faster into about 3x larger files)")
    rendering.add_argument("--clip-cache-mb", type=_non_negative_int,
                           default=_env_value("clip-cache-mb", _non_negative_int,
                                              defaults.clip_cache_mb),
                           help="keep up to this many MiB of finished clips under the data dir, so "
                                "identical requests render once (0: no cache; default: 1024)")
    add_proxy_arguments(serve)
    add_chaos_arguments(serve)
    logging_flags = serve.add_argument_group("logging (README, \"See what happened\")")
    logging_flags.add_argument("--log-level", type=_choice(logs.LEVELS), choices=logs.LEVELS,
                               default=_env_value("log-level", _choice(logs.LEVELS), "info"),
                               help="the least severe lines shown (default: info)")
    logging_flags.add_argument("--log-format", type=_choice(logs.FORMATS), choices=logs.FORMATS,
                               default=_env_value("log-format", _choice(logs.FORMATS), "text"),
                               help="text lines (default) or one JSON object per line")
    offline = serve.add_argument_group(
        "images answered offline (README, \"Sample frames and your own images\")")
    offline.add_argument("--asset-map", action="append", type=_asset_mapping, default=[],
                         metavar="URL_PREFIX=DIR",
                         help="answer image URLs under URL_PREFIX from the files in DIR, never "
                              "fetching them (repeatable; KF2V_MOCK_ASSET_MAP: comma-separated)")
    offline.add_argument("--no-doc-sample-urls", action="store_true",
                         default=_env_flag("no-doc-sample-urls"),
                         help="fetch the API document's two sample image URLs like any other "
                              "(default: answered with the built-in sample frames)")
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
    parser = _Parser(prog="kf2v-mock run", usage=RUN_USAGE, description=(
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
    keys = list(args.api_key) + _env_value("api-keys", _listed(_key_spec), [])
    asset_map = _env_value("asset-map", _listed(_asset_mapping), []) + list(args.asset_map)
    return Settings(
        host=args.host, beijing_port=args.beijing_port, singapore_port=args.singapore_port,
        api_keys=keys, data_dir=args.data_dir, in_memory=args.in_memory, seed=args.seed,
        timing=args.timing, max_running=args.max_running,
        render_workers=args.render_workers, ready_file=args.ready_file,
        log_requests=not args.quiet, quotas=not args.no_quotas,
        submit_rps=args.submit_rps,
        query_qps=args.query_qps, policy_qps=args.policy_qps, scenarios=not args.no_scenarios,
        admin_token=args.admin_token or None,
        allow_private_image_urls=args.allow_private_image_urls,
        allow_loopback_image_urls=not args.deny_loopback_image_urls,
        asset_map=asset_map, doc_sample_urls=not args.no_doc_sample_urls,
        render_preset=args.render_preset, clip_cache_mb=args.clip_cache_mb, **proxy_settings(args),
        chaos_seed=args.chaos, chaos_profile=args.chaos_profile, render=not args.no_render)


# --- starting: every way it can fail becomes one StartupError line ----------------------------------
async def start(settings: Settings) -> tuple[web.AppRunner, Emulator]:
    """Open the data dir, bind both listeners and write the ready file. Nothing is logged before
    that has worked: a start-up problem is the one line ``main`` prints."""
    _remove_ready_file(settings.ready_file)  # never leave an earlier run's ports to be read
    try:
        emulator = Emulator(settings)
    except Exception as exc:
        raise StartupError(data_dir_problem(exc, settings)) from exc
    app = create_app(settings, emulator)
    try:
        runner = await start_server(app, settings)
    except ListenError as exc:
        raise StartupError(listen_problem(exc)) from exc
    except ReadyFileError as exc:
        raise StartupError(f"cannot write --ready-file {exc.filename}: {exc.strerror or exc}") from exc
    except CaError as exc:  # the intercepting proxy's CA
        raise StartupError(str(exc)) from exc
    except Exception as exc:  # resuming the data dir's unfinished work (Emulator.start)
        raise StartupError(data_dir_problem(exc, settings)) from exc
    seed = "random" if settings.seed is None else settings.seed
    log.info("kf2v-mock %s, timing %s, seed %s", __version__, settings.timing, seed)
    log.info("data dir %s (%s)", emulator.data_dir, _data_dir_kind(settings))
    for name in unknown_env_names():
        log.warning("%s is not a kf2v-mock setting; ignored (see kf2v-mock serve --help)", name)
    return runner, emulator


def _data_dir_kind(settings: Settings) -> str:
    if settings.data_dir is None:
        return "temporary: removed at exit, nothing kept"
    if settings.in_memory:
        return "files only, state in memory: nothing kept across restarts"
    return "kept across restarts"


def _remove_ready_file(path: Path | None) -> None:
    if path is None:
        return
    if not path.parent.is_dir():
        raise StartupError(f"--ready-file {path}: the directory {path.parent} does not exist")
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StartupError(f"--ready-file {path}: cannot replace it ({exc.strerror or exc})") from None


def listen_problem(exc: ListenError) -> str:
    flag, cause = PORT_FLAGS[exc.region], exc.cause
    # asyncio re-raises bind errors with its own wording; the errno says it plainly.
    reason = os.strerror(cause.errno) if cause.errno and cause.errno > 0 else (cause.strerror or str(cause))
    where = f"port {exc.port} ({exc.region}, {flag}) on {exc.host}"
    if cause.errno == errno.EADDRINUSE:
        return (f"{where} is already in use (another kf2v-mock?): stop what holds it, or pass "
                f"another port ({flag} 0 picks a free one)")
    if cause.errno == errno.EACCES:
        return (f"no permission to listen on {where}: ports below 1024 need privileges; pass a "
                f"higher port ({flag} 0 picks a free one)")
    if cause.errno == errno.EADDRNOTAVAIL or (cause.errno or 0) < 0:  # getaddrinfo's are negative
        return (f"cannot listen on --host {exc.host}: {reason} (give an address "
                f"of this machine, e.g. 127.0.0.1, or 0.0.0.0 for all)")
    return f"cannot listen on {where}: {reason}"


def data_dir_problem(exc: BaseException, settings: Settings) -> str:
    """One line for whatever opening the data dir raised (the store decides what it raises)."""
    if settings.data_dir is None:
        return f"cannot set up a temporary data dir: {_reason(exc)} (is TMPDIR writable?)"
    where = f"--data-dir {settings.data_dir}"
    another = "or use another --data-dir"
    if isinstance(exc, DataDirError):
        return f"{exc} ({'stop it, ' if 'in use' in str(exc) else ''}{another})"
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return f"{where} is not a directory (a file is in the way): remove it, {another}"
    if isinstance(exc, PermissionError) or (isinstance(exc, sqlite3.Error)
                                            and "readonly" in str(exc)):
        return (f"{where} is not writable ({_reason(exc)}): fix its permissions, {another}")
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system: {another}"
    if isinstance(exc, sqlite3.Error):
        state = Path(settings.data_dir) / DB_NAME
        return (f"{state} cannot be read as kf2v-mock state ({_reason(exc)}): move it away to "
                f"start afresh, {another}")
    return f"cannot use {where}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


# --- serving ---------------------------------------------------------------------------------------
async def serve(settings: Settings) -> None:
    runner, emulator = await start(settings)
    pauses = ShortPauses(asyncio.get_running_loop()).start()
    for account in emulator.keys.keys():
        log.info("key for %s: %s", account.region, account.api_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        pauses.stop()
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
    runner, emulator = await start(settings)
    try:
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
    args = build_parser().parse_args(["serve", *ports, *serve_flags])
    if run_args.intercept and args.proxy_port is None:
        args.proxy_port = 0
    settings = settings_from_args(args)
    _setup_logging(args)
    return asyncio.run(run_command(settings, command, run_args.region, run_args.intercept,
                                   run_args))


def _serve_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "ca":
        return ca_main(args)
    settings = settings_from_args(args)
    _setup_logging(args)
    asyncio.run(serve(settings))
    return 0


def _setup_logging(args: argparse.Namespace) -> None:
    logs.setup(args.log_level, args.log_format, quiet=args.quiet)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:  # a client of a running emulator, not a start-up
        return report_main(argv[1:])
    try:
        if argv[:1] == ["run"]:
            return run_main(argv[1:])
        return _serve_main(argv)
    except StartupError as exc:
        print(f"kf2v-mock: error: {exc}", file=sys.stderr)
        return EXIT_STARTUP


# --- the intercepting proxy and its CA (README, "Clients you cannot change") -----------------------
def add_proxy_arguments(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group('intercepting proxy (README, "Clients you cannot change")')
    group.add_argument("--proxy-port", type=_port, default=_env_value("proxy-port", _port, None),
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
