#!/usr/bin/env python3
"""kf2v-mock's performance, as ONE table of ratios, each against a baseline measured in the same run.

    .venv/bin/python benchmarks/run.py                # everything (13 min at load average 12, 4-s wrk runs)
    .venv/bin/python benchmarks/run.py --skip-peers   # without Prism/WireMock/Mockoon/moto
    .venv/bin/python benchmarks/run.py --only render,startup --rounds 5

What is measured (every figure in ``--rounds`` rounds, configurations interleaved inside each round
so that drift of this shared machine hits them alike; the table shows the median and, in brackets,
min-max over the rounds; ratios are taken per round, then summarised):

- ``request``: ``GET /api/v1/tasks/{id}`` of a SUCCEEDED task and the create ``POST`` against
  ``kf2v-mock serve`` (``--no-quotas``, request log on as by default), and against a bare aiohttp app
  answering the same bytes (``bare_app.py``). Load generator: wrk (Debian's ``wrk``, installed with
  apt-get when missing), ``-t2 -c64``; the create body carries two 320x240 frames and a fixed seed.
- ``peers``: the same GET loop against the mock servers a user would pick instead, each installed by
  this script from its package registry into ``--cache-dir`` (never committed): Stoplight Prism
  (npm ``@stoplight/prism-cli``, mocking ``contract/openapi.yaml``), WireMock (npm ``wiremock``, its
  standalone jar on the machine's Java), Mockoon CLI (npm ``@mockoon/cli``) and moto's server (PyPI
  ``moto[server]``, S3 GetObject of a 769-byte object).
- ``render``: ``render_clip`` with the camera move per tier against the bare encode of the SAME 150
  frames (rendered beforehand, held in memory, piped to the same ffmpeg command).
- ``load``: poll p99 (one poller ``-t1 -c1``; 64 connections ``-t2 -c64``) while clips render
  continuously (a feeder keeps 4 distinct 720P tasks in flight, polling each every 0.1 s) against
  the same server idle; clips finished per minute meanwhile (the 64-connection run under load
  lasts ``POLLED_SECONDS``, for enough clips to count), and then for ``QUIET_SECONDS`` with
  the feeder's polls only. wrk corrects its latencies for coordinated omission: one 20 ms stall
  counts as the ~80 requests a steady client would have sent meanwhile, so the one-poller p99 is
  the share of time the server is stalled more than that. With ``--ref`` (default ``main``) the
  same is measured on that git revision (``git archive`` into the cache dir), so "today" is in the
  same run. Two controls measure the machine rather than kf2v-mock: the same one-poller loop
  against the bare app (which renders nothing) while kf2v-mock renders, and beside one
  ``SCHED_IDLE`` busy loop per CPU with no renders at all.
- ``startup``: spawn to listening (ready file written) of ``kf2v-mock serve`` against the bare app.
- ``memory``: peak memory of the server plus everything it runs (render workers, ffmpeg), sampled
  every 5 ms while one clip renders per tier, against the idle server: PSS (each shared page split
  between the processes mapping it: what the tree occupies; the target is on it) and RSS (each
  shared page counted in every process).

Prints the load average before and after. Nothing here runs in the test suite.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_render import photo_like  # noqa: E402
from mock_server.media.render import (RenderRequest, _ffmpeg_cmd, _grow_pipe,  # noqa: E402
                                      iter_frames, render_clip)
from mock_server.media.sizing import output_size  # noqa: E402
from mock_server.testing.serve_process import ServeProcess  # noqa: E402

KEY = "sk-kf2v-mock-beijing"
CREATE = "/api/v1/services/aigc/image2video/video-synthesis"
TIERS = ("480P", "720P", "1080P")
SECTIONS = ("request", "peers", "render", "load", "startup", "memory")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- small tools --------------------------------------------------------------------------------
def http(method: str, url: str, body: dict | bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
            "X-DashScope-Async": "enable"}


def data_url(image: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(image).decode()


def create_body(first: bytes, last: bytes, resolution: str, seed: int) -> dict:
    return {"model": "wan2.2-kf2v-flash",
            "input": {"prompt": "a cat turns into a dog", "first_frame_url": data_url(first),
                      "last_frame_url": data_url(last)},
            "parameters": {"resolution": resolution, "seed": seed, "prompt_extend": False}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.05)  # waiting for another process, never for emulator state
    raise SystemExit(f"timed out waiting for {what}")


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --- wrk ------------------------------------------------------------------------------------------
def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get) ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


class Wrk:
    def __init__(self, workdir: Path, duration: float):
        self.exe = ensure_wrk()
        self.duration = duration
        self.get_script = workdir / "get.lua"
        self.get_script.write_text(f'wrk.headers["Authorization"] = "Bearer {KEY}"\n')
        self.post_script = workdir / "post.lua"

    def set_post_body(self, body: dict) -> None:
        lua_body = json.dumps(json.dumps(body))  # a Lua string literal is a JSON string here
        headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in api_headers().items())
        self.post_script.write_text(f'wrk.method = "POST"\nwrk.body = {lua_body}\n{headers}')

    def run(self, url: str, threads: int = 2, connections: int = 64, post: bool = False,
            duration: float | None = None) -> tuple[float, float]:
        """(requests per second, p99 latency in ms); non-2xx answers make it fail loudly."""
        script = self.post_script if post else self.get_script
        out = subprocess.run([self.exe, f"-t{threads}", f"-c{connections}",
                              f"-d{max(1, round(duration or self.duration))}s", "--timeout", "10s",
                              "--latency", "-s", str(script), url],
                             check=True, capture_output=True, text=True).stdout
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)
        if "Non-2xx" in out or (errors and any(int(n) for n in errors.groups())):
            raise SystemExit(f"wrk against {url} saw errors:\n{out}")
        # (a request slower than the 10 s timeout only counts as one; its latency is lost)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p99 = _ms(re.search(r"99%\s+([\d.]+(?:us|ms|s))", out).group(1))
        return rps, p99


# --- the table ------------------------------------------------------------------------------------
class Figure:
    def __init__(self, name: str, unit: str, baseline: str, target: str = "",
                 better: str = "lower", check: Callable[[float], bool] | None = None):
        self.name, self.unit, self.baseline, self.target = name, unit, baseline, target
        self.better, self.check = better, check
        self.ours: list[float] = []
        self.base: list[float] = []

    def add(self, ours: float, base: float) -> None:
        self.ours.append(ours)
        self.base.append(base)

    @property
    def ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.ours, self.base) if b]


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _fmt(values: list[float], unit: str) -> str:
    big = values and statistics.median(values) >= 100
    return spread(values, ",.0f" if big else ".2f") + (f" {unit}" if unit else "")


def print_table(figures: list[Figure], started: str, load_before: str, load_after: str,
                rounds: int) -> None:
    print(f"\nkf2v-mock benchmarks, {started}, {os.cpu_count()} CPUs, median (min–max) of "
          f"{rounds} interleaved rounds; load average before {load_before}, after {load_after}\n")
    print("| figure | kf2v-mock | baseline, same run | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for f in figures:
        if not f.ours:
            continue
        met = "" if f.check is None else ("yes" if f.check(statistics.median(f.ratios)) else "no")
        print(f"| {f.name} | {_fmt(f.ours, f.unit)} | {f.baseline}: {_fmt(f.base, f.unit)} | "
              f"{spread(f.ratios, '.2f')}× | {f.target} | {met} |")


# --- the emulator -------------------------------------------------------------------------------
def serve(*flags: str, ref_dir: Path | None = None, quiet: bool = False) -> ServeProcess:
    env = {"PYTHONPATH": str(ref_dir)} if ref_dir else None
    return ServeProcess("--no-quotas", *flags, quiet=quiet, env=env,
                        cwd=ref_dir or ROOT).start()


def succeeded_task(server: ServeProcess, body: dict) -> tuple[str, bytes, bytes]:
    """Create a task and wait for it to succeed: (GET url, GET answer bytes, create answer)."""
    base = server.root_url("cn-beijing")
    status, created = http("POST", base + CREATE, body, api_headers())
    assert status == 200, created
    task_id = json.loads(created)["output"]["task_id"]
    url = f"{base}/api/v1/tasks/{task_id}"
    http("POST", base + "/_mock/clock", {"advance_seconds": 600})

    def done():
        answer = http("GET", url, headers={"Authorization": f"Bearer {KEY}"})[1]
        return answer if json.loads(answer)["output"]["task_status"] == "SUCCEEDED" else None
    return url, wait_for(done, "the first task to succeed"), created


def process_tree_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of ``pid`` and all its descendants, in MB. RSS counts a page shared by several
    of them (Python, numpy and Pillow's code, mapped by the server and every worker) once per
    process; PSS splits it between them, so the PSS sum is the memory the tree occupies."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, pss / 1024


# --- sections -------------------------------------------------------------------------------------
def bench_request(args, wrk: Wrk, work: Path, figures: dict, frames: tuple[bytes, bytes],
                  peers: list) -> None:
    first, last = frames
    body = create_body(first, last, "480P", seed=4242)
    server = serve("--render-preset", "ultrafast")
    quiet = serve("--render-preset", "ultrafast", quiet=True)
    bare = None
    try:
        get_url, get_answer, create_answer = succeeded_task(server, body)
        quiet_url = succeeded_task(quiet, body)[0]
        (work / "get.json").write_bytes(get_answer)
        (work / "create.json").write_bytes(create_answer)
        bare, bare_url = start_bare_app(work, "request")
        bare_get = bare_url + get_url[get_url.index("/api/"):]
        wrk.set_post_body(body)
        started = [p.start(work, get_answer) for p in peers]
        get = figures["get"] = Figure("GET /tasks/{id}, wrk -t2 -c64", "req/s", "bare aiohttp",
                                      "≥ 0.7×", "higher", lambda r: r >= 0.7)
        get_p99 = figures["get_p99"] = Figure("GET /tasks/{id} p99, wrk -t2 -c64", "ms",
                                              "bare aiohttp")
        get_quiet = figures["get quiet"] = Figure(
            "GET /tasks/{id} with --quiet (no request log line)", "req/s", "bare aiohttp", "",
            "higher")
        post = figures["create"] = Figure("create POST (two 320x240 frames), wrk -t2 -c64",
                                          "req/s", "bare aiohttp", "", "higher")
        peer_figures = {p.name: (Figure(f"GET loop vs {p.name}", "req/s", p.name,
                                        "ahead of WireMock" if p.name == "WireMock" else "",
                                        "higher", (lambda r: r > 1.0) if p.name == "WireMock"
                                        else None),
                                 Figure(f"GET p99 vs {p.name}", "ms", p.name, "", "lower"))
                        for p in started}
        for peer_name, (rate, p99) in peer_figures.items():
            figures[f"peer {peer_name}"], figures[f"peer p99 {peer_name}"] = rate, p99
        for url in [get_url, quiet_url, bare_get, *(p.url for p in started)]:
            wrk.run(url, duration=2)  # warm-up: JITs, caches, first connections
        for r in range(args.rounds):
            ours = wrk.run(get_url)
            theirs = wrk.run(bare_get)
            get.add(ours[0], theirs[0])
            get_p99.add(ours[1], theirs[1])
            get_quiet.add(wrk.run(quiet_url)[0], theirs[0])
            for peer in started:
                peer_result = wrk.run(peer.url)
                mine = wrk.run(get_url)
                peer_figures[peer.name][0].add(mine[0], peer_result[0])
                peer_figures[peer.name][1].add(mine[1], peer_result[1])
            post.add(wrk.run(server.root_url() + CREATE, post=True, duration=3)[0],
                     wrk.run(bare_url + CREATE, post=True, duration=3)[0])
            print(f"request round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for peer in peers:
            peer.stop()
        if bare is not None:
            bare.kill()
            bare.wait()
        for each in (server, quiet):
            each.stop()
            each.cleanup()


def start_bare_app(work: Path, name: str) -> tuple[subprocess.Popen, str]:
    """``bare_app.py`` answering ``work``/get.json and create.json: (process, root URL)."""
    ready = work / f"bare-{name}.json"
    bare = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bare_app.py"),
                             str(ready), str(work / "get.json"), str(work / "create.json")])
    return bare, json.loads(wait_for(lambda: ready.exists() and ready.read_text(),
                                     "bare app"))["url"]


class IdleSpinners:
    """One busy loop per CPU at SCHED_IDLE, the lowest priority Linux has: CPU load that touches no
    memory and yields to anything else, to tell the machine's own scheduling latency apart from
    what renders do."""

    CODE = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True: pass"

    def __enter__(self) -> "IdleSpinners":
        self.processes = [subprocess.Popen([sys.executable, "-c", self.CODE])
                          for _ in range(os.cpu_count() or 1)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def bench_render(args, figures: dict, frames: tuple[bytes, bytes], work: Path) -> None:
    first, last = frames
    cases = {}
    for tier in args.tiers:
        w, h = output_size(1600, 900, tier)
        req = RenderRequest(first, last, w, h, seed=42)
        cases[tier] = (req, [bytes(f) for f in iter_frames(req)])
        figures[f"render {tier}"] = Figure(
            f"clip render with camera move, {tier} {w}x{h} (veryfast)", "s",
            "bare encode of the same 150 frames", "≤ 1.1×", "lower", lambda r: r <= 1.1)

    def bare_encode(req: RenderRequest, raw: list[bytes]) -> None:
        proc = subprocess.Popen(_ffmpeg_cmd(req.width, req.height, req.preset,
                                            str(work / "bare.mp4")), stdin=subprocess.PIPE)
        _grow_pipe(proc.stdin.fileno())
        for frame in raw:
            proc.stdin.write(frame)
        proc.stdin.close()
        if proc.wait() != 0:
            raise SystemExit("bare encode failed")

    for tier, (req, raw) in cases.items():  # warm-up: page cache, first ffmpeg start
        render_clip(req, work / "warm.mp4")
    for r in range(args.rounds):
        for tier, (req, raw) in cases.items():
            t0 = time.perf_counter()
            render_clip(req, work / "render.mp4")
            t1 = time.perf_counter()
            bare_encode(req, raw)
            t2 = time.perf_counter()
            figures[f"render {tier}"].add(t1 - t0, t2 - t1)
        print(f"render round {r + 1}/{args.rounds} done", file=sys.stderr)


class Feeder(threading.Thread):
    """Keeps ``in_flight`` distinct tasks rendering and counts the clips it sees finish."""

    def __init__(self, server: ServeProcess, frames: tuple[bytes, bytes], resolution: str,
                 in_flight: int = 4):
        super().__init__(daemon=True)
        self.base = server.root_url()
        self.frames, self.resolution, self.in_flight = frames, resolution, in_flight
        self.outstanding: list[str] = []
        self.finished = 0
        self.seed = int(time.time())  # never a cache hit: every clip is rendered
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            while len(self.outstanding) < self.in_flight:
                self.seed += 1
                status, answer = http("POST", self.base + CREATE,
                                      create_body(*self.frames, self.resolution, self.seed),
                                      api_headers())
                assert status == 200, answer
                self.outstanding.append(json.loads(answer)["output"]["task_id"])
            for task_id in list(self.outstanding):
                answer = http("GET", f"{self.base}/api/v1/tasks/{task_id}",
                              headers={"Authorization": f"Bearer {KEY}"})[1]
                if json.loads(answer)["output"]["task_status"] in ("SUCCEEDED", "FAILED"):
                    self.outstanding.remove(task_id)
                    self.finished += 1
            self.stopping.wait(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


QUIET_SECONDS = 15.0
POLLED_SECONDS = 12.0  # the 64-connection poll under load, during which clips are counted


def bench_load(args, wrk: Wrk, figures: dict, frames: tuple[bytes, bytes], ref_dir: Path | None,
               work: Path) -> None:
    names = [("this", None)] + ([("ref", ref_dir)] if ref_dir else [])
    label = {"this": "", "ref": f" ({args.ref})"}
    for name, _ in names:
        figures[f"p99 c1 {name}"] = Figure(f"poll p99, one poller, clips rendering{label[name]}",
                                           "ms", "idle", "≤ 3×" if name == "this" else "",
                                           "lower", (lambda r: r <= 3) if name == "this" else None)
        figures[f"p99 c64 {name}"] = Figure(f"poll p99, 64 connections, clips rendering"
                                            f"{label[name]}", "ms", "idle",
                                            "≤ 3×" if name == "this" else "", "lower",
                                            (lambda r: r <= 3) if name == "this" else None)
        if name == "this":
            # Controls: the same one-poller loop against the bare app, which renders nothing, while
            # kf2v-mock renders, and beside busy loops that yield to everything: what the
            # machine's scheduler alone does to a one-poller p99 once every CPU is busy.
            figures["p99 c1 bare"] = Figure(
                "control: poll p99, one poller, bare aiohttp app while kf2v-mock renders", "ms",
                "idle")
            figures["p99 c1 spin"] = Figure(
                "control: the same, beside a SCHED_IDLE busy loop per CPU (no renders)", "ms",
                "idle")
    if ref_dir:
        figures["clips/min"] = Figure(f"clips/min (720P veryfast) during those polls "
                                      f"({POLLED_SECONDS:.0f} s at 64 connections)", "/min",
                                      f"{args.ref}", "≥ 0.9×", "higher", lambda r: r >= 0.9)
        figures["clips/min quiet"] = Figure(
            f"clips/min (720P veryfast), {QUIET_SECONDS:.0f} s with only the feeder's polls",
            "/min", f"{args.ref}", "", "higher")
    servers = {}
    bare = None
    try:
        for name, where in names:
            server = servers[name] = serve(ref_dir=where)
            url, get_answer, create_answer = succeeded_task(
                server, create_body(*frames, "480P", seed=7))
            servers[name] = (server, url)
            if name == "this":
                (work / "load").mkdir(exist_ok=True)
                (work / "load" / "get.json").write_bytes(get_answer)
                (work / "load" / "create.json").write_bytes(create_answer)
                bare, bare_root = start_bare_app(work / "load", "load")
                bare_url = bare_root + url[url.index("/api/"):]
        for r in range(args.rounds):
            clips, quiet = {}, {}
            spin_idle = wrk.run(bare_url, 1, 1)[1]
            with IdleSpinners():
                figures["p99 c1 spin"].add(wrk.run(bare_url, 1, 1)[1], spin_idle)
            for name, (server, url) in servers.items():
                idle1 = wrk.run(url, 1, 1)[1]
                idle64 = wrk.run(url)[1]
                bare_idle = wrk.run(bare_url, 1, 1)[1] if name == "this" else None
                feeder = Feeder(server, frames, "720P")
                feeder.start()
                wait_for(lambda: feeder.finished >= 1, "the first clip under load", 300)
                before, t0 = feeder.finished, time.monotonic()
                busy1 = wrk.run(url, 1, 1)[1]
                # Long enough to count clips: a 720P clip takes seconds, so a short window
                # counts two or three of them, and one clip more or less is a third of it.
                busy64 = wrk.run(url, duration=POLLED_SECONDS)[1]
                clips[name] = (feeder.finished - before) / (time.monotonic() - t0) * 60
                if name == "this":  # after the clip count: the bare app's polls cost CPU too
                    figures["p99 c1 bare"].add(wrk.run(bare_url, 1, 1)[1], bare_idle)
                # Render throughput itself, with the SDK-like polling of the feeder only (each
                # task every 0.1 s): no closed-loop poller taking the CPU the renders yield.
                before, t0 = feeder.finished, time.monotonic()
                time.sleep(QUIET_SECONDS)
                quiet[name] = (feeder.finished - before) / (time.monotonic() - t0) * 60
                feeder.stop()
                figures[f"p99 c1 {name}"].add(busy1, idle1)
                figures[f"p99 c64 {name}"].add(busy64, idle64)
                wait_for(lambda: not _rendering(server), "renders to finish", 300)
            if ref_dir:
                figures["clips/min"].add(clips["this"], clips["ref"])
                figures["clips/min quiet"].add(quiet["this"], quiet["ref"])
            print(f"load round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        if bare is not None:
            bare.kill()
            bare.wait()
        for entry in servers.values():
            server = entry[0] if isinstance(entry, tuple) else entry
            server.stop()
            server.cleanup()


def _rendering(server: ServeProcess) -> bool:
    """Whether a clip is still to be written (the admin API's view of every task, page by page)."""
    url = server.root_url() + "/_mock/tasks"
    while url:
        page = json.loads(http("GET", url)[1])
        if any(t["failure"] is None and not t["video_ready"] and t["canceled_time"] is None
               for t in page["tasks"]):
            return True
        url = page.get("older") and f"{server.root_url()}/_mock/tasks?before={page['older']}"
    return False


def bench_startup(args, work: Path, figures: dict) -> None:
    fig = figures["startup"] = Figure("start to listening", "ms", "bare aiohttp app")
    (work / "g.json").write_bytes(b"{}")
    for r in range(max(args.rounds, 5)):
        t0 = time.perf_counter()
        server = ServeProcess("--no-quotas", cwd=ROOT).start()
        ours = time.perf_counter() - t0
        server.stop()
        server.cleanup()
        ready = work / "startup.json"
        ready.unlink(missing_ok=True)
        t0 = time.perf_counter()
        bare = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bare_app.py"),
                                 str(ready), str(work / "g.json"), str(work / "g.json")])
        while not ready.exists():
            time.sleep(0.02)  # ServeProcess polls at the same interval
        theirs = time.perf_counter() - t0
        bare.kill()
        bare.wait()
        fig.add(ours * 1000, theirs * 1000)


def bench_memory(args, figures: dict) -> None:
    server = serve()
    try:
        base = server.root_url()
        idle_rss, idle_pss = process_tree_memory_mb(server.pid)
        for tier in args.tiers:
            w, h = {"480P": (832, 480), "720P": (1280, 720), "1080P": (1920, 1080)}[tier]
            first, last = photo_like(w, h, 11), photo_like(w, h, 12)
            pss_fig = figures[f"memory {tier}"] = Figure(
                f"peak memory (PSS), server + worker + ffmpeg, one {tier} clip", "MB",
                "idle server", "≤ 300 MB" if tier == "1080P" else "", "lower")
            rss_fig = figures[f"memory {tier} rss"] = Figure(
                f"peak RSS (shared pages once per process), one {tier} clip", "MB",
                "idle server", "", "lower")
            for r in range(args.rounds):
                peak, stop = [0.0, 0.0], threading.Event()

                def sample():
                    while not stop.is_set():
                        rss, pss = process_tree_memory_mb(server.pid)
                        peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
                        time.sleep(0.005)
                sampler = threading.Thread(target=sample)
                sampler.start()
                status, answer = http("POST", base + CREATE,
                                      create_body(first, last, tier, seed=1000 + r), api_headers())
                assert status == 200, answer
                http("POST", base + "/_mock/clock", {"advance_seconds": 600})
                wait_for(lambda: not _rendering(server), f"the {tier} clip", 300)
                stop.set()
                sampler.join()
                rss_fig.add(peak[0], idle_rss)
                pss_fig.add(peak[1], idle_pss)
        if "memory 1080P" in figures:
            f = figures["memory 1080P"]
            f.check = lambda _r, f=f: statistics.median(f.ours) <= 300
    finally:
        server.stop()
        server.cleanup()


# --- peers ----------------------------------------------------------------------------------------
class Peer:
    name = ""
    url = ""

    def __init__(self, cache: Path):
        self.cache = cache
        self.process: subprocess.Popen | None = None
        self.log = cache / f"{type(self).__name__.lower()}.log"

    def install(self) -> None: ...

    def start(self, work: Path, body: bytes) -> "Peer": ...

    def _spawn(self, command: list[str], cwd: Path | None = None) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=cwd, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()


def npm_install(cache: Path, *packages: str) -> Path:
    prefix = cache / "npm"
    missing = [p for p in packages if not (prefix / "node_modules" / p).exists()]
    if missing:
        print(f"installing {' '.join(missing)} (npm) ...", file=sys.stderr)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        "--loglevel=error", *missing], check=True)
    return prefix / "node_modules"


def _wait_http(url: str, what: str, headers: dict | None = None) -> None:
    wait_for(lambda: http("GET", url, headers=headers, timeout=5)[0] == 200, what, 180)


class Prism(Peer):
    name = "Prism"

    def install(self) -> None:
        npm_install(self.cache, "@stoplight/prism-cli")

    def start(self, work, body):
        port = free_port()
        self._spawn([str(self.cache / "npm" / "node_modules" / ".bin" / "prism"), "mock", "-h",
                     "127.0.0.1", "-p", str(port), "--errors", "false",
                     str(ROOT / "contract" / "openapi.yaml")])
        self.url = f"http://127.0.0.1:{port}/api/v1/tasks/86ecf553-d340-4e21-af6e-a0c6a421c010"
        _wait_http(self.url, "Prism", {"Authorization": f"Bearer {KEY}"})
        return self


class WireMock(Peer):
    name = "WireMock"

    def install(self) -> None:
        npm_install(self.cache, "wiremock")

    def start(self, work, body):
        jar = next((self.cache / "npm" / "node_modules" / "wiremock").rglob("wiremock*standalone*.jar"))
        port = free_port()
        self._spawn(["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1",
                     "--disable-banner", "--root-dir", str(work / "wiremock")])
        admin = f"http://127.0.0.1:{port}/__admin/mappings"
        wait_for(lambda: http("GET", admin, timeout=5)[0] == 200, "WireMock", 180)
        http("POST", admin, {"request": {"method": "GET", "urlPathPattern": "/api/v1/tasks/.*"},
                             "response": {"status": 200, "body": body.decode(),
                                          "headers": {"Content-Type": "application/json"}}})
        self.url = f"http://127.0.0.1:{port}/api/v1/tasks/86ecf553"
        _wait_http(self.url, "WireMock stub")
        return self


class Mockoon(Peer):
    name = "Mockoon CLI"

    def install(self) -> None:
        npm_install(self.cache, "@mockoon/cli")

    def start(self, work, body):
        port = free_port()
        environment = {
            "uuid": "5b1f0b8e-0000-4000-8000-000000000001", "lastMigration": 33,
            "name": "kf2v-bench", "endpointPrefix": "", "latency": 0, "port": port,
            "hostname": "127.0.0.1", "folders": [], "rootChildren": [{"type": "route",
                                                                       "uuid": "r1"}],
            "proxyMode": False, "proxyHost": "", "proxyRemovePrefix": False,
            "tlsOptions": {"enabled": False, "type": "CERT", "pfxPath": "", "certPath": "",
                           "keyPath": "", "caPath": "", "passphrase": ""},
            "cors": False, "headers": [], "proxyReqHeaders": [], "proxyResHeaders": [],
            "data": [], "callbacks": [],
            "routes": [{"uuid": "r1", "type": "http", "documentation": "", "method": "get",
                        "endpoint": "api/v1/tasks/:id", "responseMode": None,
                        "streamingMode": None, "streamingInterval": 0,
                        "responses": [{"uuid": "x1", "body": body.decode(), "latency": 0,
                                       "statusCode": 200, "label": "", "headers": [
                                           {"key": "Content-Type",
                                            "value": "application/json"}],
                                       "bodyType": "INLINE", "filePath": "",
                                       "databucketID": "", "sendFileAsBody": False, "rules": [],
                                       "rulesOperator": "OR", "disableTemplating": True,
                                       "fallbackTo404": False, "default": True,
                                       "crudKey": "id", "callbacks": []}]}],
        }
        data = work / "mockoon.json"
        data.write_text(json.dumps(environment))
        self._spawn([str(self.cache / "npm" / "node_modules" / ".bin" / "mockoon-cli"), "start",
                     "--data", str(data), "--port", str(port), "--disable-log-to-file"])
        self.url = f"http://127.0.0.1:{port}/api/v1/tasks/86ecf553"
        _wait_http(self.url, "Mockoon CLI")
        return self


class Moto(Peer):
    name = "moto server"

    def install(self) -> None:
        venv = self.cache / "moto-venv"
        if not (venv / "bin" / "moto_server").exists():
            print("installing moto[server] (pip) ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "moto[server]"],
                           check=True)

    def start(self, work, body):
        port = free_port()
        self._spawn([str(self.cache / "moto-venv" / "bin" / "moto_server"), "-H", "127.0.0.1",
                     "-p", str(port)])
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http("GET", base + "/moto-api/", timeout=5)[0] == 200, "moto", 180)
        http("PUT", base + "/bench")
        http("PUT", base + "/bench/task.json", body, {"Content-Type": "application/json",
                                                     "x-amz-acl": "public-read"})
        self.url = base + "/bench/task.json"
        _wait_http(self.url, "moto GetObject")
        return self


# --- main -----------------------------------------------------------------------------------------
def archive_ref(ref: str, cache: Path) -> Path:
    sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    target = cache / f"ref-{sha[:12]}"
    if not (target / "mock_server").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "mock_server"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--tiers", nargs="+", default=list(TIERS), choices=TIERS)
    parser.add_argument("--ref", default="main",
                        help="git revision whose clips/min and poll p99 are 'today' ('' to skip)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache",
                        help="where peers and the --ref checkout are installed (not committed)")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = loadavg()
    peers: list[Peer] = []
    if "peers" in sections and not args.skip_peers:
        peers = [Prism(args.cache_dir), WireMock(args.cache_dir), Mockoon(args.cache_dir),
                 Moto(args.cache_dir)]
        for peer in peers:
            peer.install()
    ref_dir = archive_ref(args.ref, args.cache_dir) if args.ref and "load" in sections else None
    frames = (photo_like(1600, 900, 1), photo_like(1200, 900, 2))
    small = tuple(_small_jpeg(f) for f in frames)
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory(prefix="kf2v-bench-") as tmp:
        work = Path(tmp)
        (work / "wiremock").mkdir()
        wrk = Wrk(work, args.duration) if sections & {"request", "peers", "load"} else None
        if sections & {"request", "peers"}:
            bench_request(args, wrk, work, figures, small, peers)
        if "render" in sections:
            bench_render(args, figures, frames, work)
        if "load" in sections:
            bench_load(args, wrk, figures, small, ref_dir, work)
        if "startup" in sections:
            bench_startup(args, work, figures)
        if "memory" in sections:
            bench_memory(args, figures)
    print_table(list(figures.values()), started, load_before, loadavg(), args.rounds)


def _small_jpeg(data: bytes) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).resize((320, 240)).save(out, "JPEG", quality=90)
    return out.getvalue()


if __name__ == "__main__":
    main()
