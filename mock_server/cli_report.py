"""The command line of the client report card and the seeded chaos run (README, "What your client
does wrong"), kept apart from ``cli.py``, which calls in here:

- ``kf2v-mock serve|run --chaos SEED [--chaos-profile NAME]``: a seeded chaos run;
- ``kf2v-mock run --report [--strict] [--report-threshold NAME=VALUE] -- COMMAND``: the card after
  COMMAND (``--strict``: exit 1 when it has an error and COMMAND itself passed);
- ``kf2v-mock report [--url URL] [filters] [--final] [--json]``: the card of a running emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from .report.card import ReportCard
from .report.render import render_text
from .report.thresholds import NAMES as THRESHOLDS
from .report.thresholds import Thresholds, parse_pairs
from .traffic.chaos import PROFILES

if TYPE_CHECKING:
    from .emulator import Emulator

DEFAULT_URL = "http://127.0.0.1:18100"
STRICT_EXIT = 1  # run --strict: the command passed but the card has errors


def _env(name: str, default):
    return os.environ.get(f"KF2V_MOCK_{name.upper().replace('-', '_')}", default)


# --- serve and run: the chaos run ------------------------------------------------------------------
def _profile(name: str) -> str:
    if name not in PROFILES:
        raise argparse.ArgumentTypeError(f"unknown chaos profile {name!r} (use one of "
                                         f"{', '.join(PROFILES)})")
    return name


def add_chaos_arguments(parser: argparse.ArgumentParser) -> None:
    # String defaults (from KF2V_MOCK_CHAOS*) go through ``type`` too: a bad one is a usage error.
    group = parser.add_argument_group("seeded chaos run (README, \"A seeded chaos run\")")
    group.add_argument("--chaos", type=int, metavar="SEED", default=_env("chaos", None) or None,
                       help="every create and task takes legal but hard paths drawn from this "
                            "seed's schedule (429s, long PENDING/RUNNING, 503s and dropped polls, "
                            "FAILED tasks, expired links, truncated downloads)")
    group.add_argument("--chaos-profile", type=_profile, metavar="NAME",
                       default=_env("chaos-profile", "default"),
                       help="which hard paths, and how often: " + "; ".join(
                           f"{p.name}: {p.description}" for p in PROFILES.values()))


# --- run: the card after the command ------------------------------------------------------------------
def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("client report card (README, \"What your client does wrong\")")
    group.add_argument("--report", action="store_true",
                       help="print the client report card after COMMAND (always with --chaos)")
    group.add_argument("--strict", action="store_true",
                       help=f"print the card (as --report) and exit {STRICT_EXIT} when it has an "
                            "error finding and COMMAND itself passed")
    group.add_argument("--report-threshold", action="append", default=[],
                       metavar="NAME=VALUE", help="change a report threshold (" +
                       ", ".join(THRESHOLDS) + ")")


def check_report_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        Thresholds().with_overrides(parse_pairs(args.report_threshold))
    except ValueError as exc:
        parser.error(str(exc))


async def after_run(emulator: "Emulator", args: argparse.Namespace, code: int) -> int:
    """Print the card (and a chaos run's schedule) once COMMAND has exited; the exit status."""
    if not (args.report or args.strict or emulator.chaos is not None):
        return code
    from .admin.report_handlers import report_for
    thresholds = Thresholds().with_overrides(parse_pairs(args.report_threshold))
    card = await report_for(emulator, final=True, thresholds=thresholds)
    sys.stdout.flush()
    print("\n" + render_text(card), file=sys.stderr, flush=True)
    if emulator.chaos is not None:
        seed, profile = emulator.chaos.seed, emulator.chaos.profile.name
        print(f"\nReplay this run: kf2v-mock run --chaos {seed} --chaos-profile {profile} "
              "... -- COMMAND", file=sys.stderr, flush=True)
    if args.strict and code == 0 and card["summary"]["errors"]:
        return STRICT_EXIT
    return code


# --- report: the card of a running emulator ---------------------------------------------------------
def build_report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kf2v-mock report", description=(
        "Print the client report card of a running emulator (GET /_mock/report): what the "
        "clients that used it did wrong, per key, with evidence."))
    default_url = _env("beijing-url", None) or DEFAULT_URL
    parser.add_argument("--url", default=default_url,
                        help="the emulator (either listener; /api/v1 may be included); default "
                             "$KF2V_MOCK_BEIJING_URL or " + DEFAULT_URL)
    parser.add_argument("--key-id", help="only this api_key_id")
    parser.add_argument("--account", help="only this account id")
    parser.add_argument("--since", metavar="ISO-8601", help="only requests from then on")
    parser.add_argument("--final", action="store_true",
                        help="the run is over: a task nobody waits on now is abandoned, however "
                             "recently it was asked about")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="change a report threshold (" + ", ".join(THRESHOLDS) + ")")
    parser.add_argument("--json", action="store_true", help="the card as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when it has an error")
    parser.add_argument("--admin-token", default=_env("admin-token", None),
                        help="X-Mock-Admin-Token, for an emulator on another host")
    return parser


def report_main(argv: list[str]) -> int:
    parser = build_report_parser()
    args = parser.parse_args(argv)
    try:
        params: dict[str, Any] = parse_pairs(args.threshold)
        Thresholds().with_overrides(params)
    except ValueError as exc:
        parser.error(str(exc))
    params.update({k: v for k, v in (("key_id", args.key_id), ("account", args.account),
                                     ("since", args.since)) if v})
    if args.final:
        params["final"] = "true"
    root = args.url.rstrip("/").removesuffix("/api/v1").rstrip("/")
    url = f"{root}/_mock/report?{urllib.parse.urlencode(params)}"
    headers = {"X-Mock-Admin-Token": args.admin_token} if args.admin_token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=60) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        print(f"kf2v-mock report: {root} answered {error.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"kf2v-mock report: cannot read {root}/_mock/report: {exc}", file=sys.stderr)
        return 1
    card = ReportCard.from_json(data)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else card.text())
    return 1 if args.strict and card.errors else 0
