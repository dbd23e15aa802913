"""Load and soak: N concurrent clients using the real dashscope SDK against a freshly started
emulator for M minutes, then a report. Nothing acknowledged may be lost.

    python benchmarks/soak.py --clients 8 --minutes 5
    python benchmarks/soak.py --clients 2 --minutes 0.25 --json report.json -- --no-quotas

Arguments after ``--`` go to ``kf2v-mock serve`` unchanged. The emulator runs as its own process
(``kf2v-mock serve`` through ``ServeProcess``: free ports, the ``fast`` timing profile), so
its RSS is measured alone. Each client thread has its own key (its own account) and loops: create
with ``VideoSynthesis.async_call`` (every ``--upload-every``-th task from local files, which the SDK
uploads through the temporary-upload flow; the others as data URLs), poll with
``VideoSynthesis.fetch`` until the task ends, download the video and check that it is an MP4. A 429
on create is retried (a throttled submit creates nothing); any other failed create is counted as an
error. When the time is up, clients finish the task in hand (up to ``--drain-seconds``).

A task is *lost* if it was acknowledged (a task id came back) but never reached SUCCEEDED with a
downloadable MP4, or if the emulator does not know it. Exit status: 0 only if nothing was lost and
no task ended any other way than SUCCEEDED.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dashscope  # noqa: E402
import requests  # noqa: E402
from dashscope import VideoSynthesis  # noqa: E402

from fixtures.frames import frame_bytes, frame_data_url  # noqa: E402
from mock_server.testing.serve_process import ServeError, ServeProcess  # noqa: E402

MODEL, RESOLUTION = "wan2.2-kf2v-flash", "480P"
PROMPTS = ["a cat turns into a dog", "日出时分的城市天际线，镜头缓缓推进", "waves roll onto a beach at dusk",
           "写实风格，一只黑色小猫好奇地看向天空"]
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    ended_otherwise: Counter = field(default_factory=Counter)  # "FAILED <code>", "CANCELED"...
    ended_ids: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # "<where> <status> <code>"
    poll_ms: list[float] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    download_bytes: int = 0

    def add(self, name: str, value) -> None:
        with self.lock:
            target = getattr(self, name)
            if isinstance(target, Counter):
                target[value] += 1
            else:
                target.append(value)


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid`` in kB, from /proc (Linux)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values


RSS_SAMPLE_SECONDS = 10.0


def sample_rss(pid: int, started: float, timeline: list, stop: threading.Event) -> None:
    while not stop.wait(RSS_SAMPLE_SECONDS):
        timeline.append((round(time.monotonic() - started), rss_kb(pid).get("VmRSS")))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return round(ordered[index], 2)


def start_emulator(workdir: Path, keys: list[str], extra: list[str]) -> ServeProcess:
    flags = ["--timing", "fast", *(f for key in keys for f in ("--api-key", f"cn-beijing={key}")),
             *extra]
    try:
        return ServeProcess(*flags, data_dir=workdir / "data", workdir=workdir, cwd=ROOT).start()
    except ServeError as exc:
        raise SystemExit(f"emulator did not start: {exc}") from None


class Client(threading.Thread):
    def __init__(self, index: int, key: str, stats: Stats, stop_creating_at: float,
                 give_up_at: float, poll_interval: float, upload_every: int, workdir: Path):
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.index, self.key, self.stats = index, key, stats
        self.stop_creating_at, self.give_up_at = stop_creating_at, give_up_at
        self.poll_interval, self.upload_every = poll_interval, upload_every
        self.frames_dir = workdir / f"frames-{index}"
        self.frames_dir.mkdir()
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy: the emulator is local

    def frames(self, n: int) -> tuple[str, str]:
        seed = self.index * 100_000 + n
        if self.upload_every and n % self.upload_every == 0:
            first, last = self.frames_dir / f"{n}-first.png", self.frames_dir / f"{n}-last.jpg"
            first.write_bytes(frame_bytes(320, 240, seed=seed))
            last.write_bytes(frame_bytes(320, 240, seed=seed + 1, fmt="JPEG"))
            return str(first), str(last)
        return frame_data_url(320, 240, seed=seed), frame_data_url(320, 240, seed=seed + 1)

    def run(self) -> None:
        n = 0
        while time.monotonic() < self.stop_creating_at:
            task_id = self.create(n)
            n += 1
            if task_id is not None:
                self.follow(task_id)

    def create(self, n: int) -> str | None:
        first, last = self.frames(n)
        while time.monotonic() < self.stop_creating_at:
            started = time.perf_counter()
            try:
                rsp = VideoSynthesis.async_call(api_key=self.key, model=MODEL,
                                                prompt=PROMPTS[n % len(PROMPTS)],
                                                first_frame_url=first, last_frame_url=last,
                                                resolution=RESOLUTION)
            except Exception as exc:  # a transport error: nothing was acknowledged
                self.stats.add("errors", f"create exception {type(exc).__name__}")
                time.sleep(0.5)
                continue
            self.stats.add("create_ms", (time.perf_counter() - started) * 1000)
            if rsp.status_code == 200 and rsp.output and rsp.output.task_id:
                self.stats.add("acknowledged", rsp.output.task_id)
                return rsp.output.task_id
            self.stats.add("errors", f"create {rsp.status_code} {rsp.code}")
            if rsp.status_code != 429:
                return None
            time.sleep(1.0)  # throttled: nothing was created, try the same task again
        return None

    def follow(self, task_id: str) -> None:
        while time.monotonic() < self.give_up_at:
            started = time.perf_counter()
            try:
                rsp = VideoSynthesis.fetch(task_id, api_key=self.key)
            except Exception as exc:
                self.stats.add("errors", f"fetch exception {type(exc).__name__}")
                time.sleep(self.poll_interval)
                continue
            self.stats.add("poll_ms", (time.perf_counter() - started) * 1000)
            if rsp.status_code != 200 or not rsp.output:
                self.stats.add("errors", f"fetch {rsp.status_code} {rsp.code}")
                time.sleep(self.poll_interval)
                continue
            status = rsp.output.task_status
            if status == "SUCCEEDED":
                if self.download(task_id, rsp.output.video_url):
                    self.stats.add("completed", task_id)
                else:
                    self.stats.add("lost", task_id)
                return
            if status in TERMINAL:
                self.stats.add("ended_otherwise", f"{status} {rsp.output.code or ''}".strip())
                # UNKNOWN within 24 hours means the emulator forgot an acknowledged task.
                self.stats.add("lost" if status == "UNKNOWN" else "ended_ids", task_id)
                return
            time.sleep(self.poll_interval)
        self.stats.add("lost", task_id)  # never reached a terminal state

    def download(self, task_id: str, url: str | None) -> bool:
        if not url:
            self.stats.add("errors", "download no-url")
            return False
        for _ in range(3):
            try:
                response = self.session.get(url, timeout=60)
            except requests.RequestException as exc:
                self.stats.add("errors", f"download exception {type(exc).__name__}")
                continue
            data = response.content
            if response.status_code == 200 and len(data) > 1000 and data[4:8] == b"ftyp":
                with self.stats.lock:
                    self.stats.download_bytes += len(data)
                return True
            self.stats.add("errors", f"download {response.status_code}")
        return False


def server_task_ids(base_url: str) -> set[str] | None:
    admin = base_url.rsplit("/api/v1", 1)[0] + "/_mock/tasks"
    ids: set[str] = set()
    url = admin
    try:
        session = requests.Session()
        session.trust_env = False
        while url:  # page by page
            page = session.get(url, timeout=30).json()
            ids.update(t["task_id"] for t in page["tasks"])
            url = f"{admin}?before={page['older']}" if page.get("older") else None
    except (requests.RequestException, ValueError, KeyError):
        return None
    return ids


def soak(args: argparse.Namespace, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="kf2v-soak-") as tmp:
        workdir = Path(tmp)
        keys = [f"sk-soak-{i}" for i in range(args.clients)]
        server = start_emulator(workdir, keys, extra)
        process, urls = server.process, server.urls
        try:
            dashscope.base_http_api_url = urls["cn-beijing"]
            rss_start = rss_kb(process.pid)
            stats = Stats()
            started = time.monotonic()
            stop_creating_at = started + args.minutes * 60
            give_up_at = stop_creating_at + args.drain_seconds
            clients = [Client(i, key, stats, stop_creating_at, give_up_at, args.poll_interval,
                              args.upload_every, workdir) for i, key in enumerate(keys)]
            timeline: list[tuple[float, int | None]] = []
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_rss, daemon=True,
                                       args=(process.pid, started, timeline, sampling))
            sampler.start()
            for client in clients:
                client.start()
            for client in clients:
                client.join(max(1.0, give_up_at - time.monotonic() + 30))
            sampling.set()
            sampler.join(5)
            hung = [c.name for c in clients if c.is_alive()]
            elapsed = time.monotonic() - started
            known = server_task_ids(urls["cn-beijing"])
            rss_end = rss_kb(process.pid)
        finally:
            exit_code = server.stop()
    acknowledged = set(stats.acknowledged)
    # Lost: acknowledged, and neither completed (SUCCEEDED + MP4 downloaded) nor ended FAILED or
    # CANCELED; or acknowledged and unknown to the emulator.
    lost = acknowledged - set(stats.completed) - set(stats.ended_ids)
    if known is not None:
        lost |= acknowledged - known
    lost = sorted(lost)
    return {
        "clients": args.clients, "minutes": args.minutes, "elapsed_seconds": round(elapsed, 1),
        "created": len(acknowledged), "completed": len(stats.completed),
        "ended_otherwise": dict(stats.ended_otherwise), "lost": len(lost), "lost_ids": lost[:20],
        "hung_clients": hung,
        "server_tasks": len(known) if known is not None else None,
        "server_tasks_not_acknowledged": (len(known - acknowledged) if known is not None
                                          else None),
        "errors": dict(stats.errors),
        "polls": len(stats.poll_ms),
        "poll_latency_ms": {"p50": percentile(stats.poll_ms, 50),
                            "p99": percentile(stats.poll_ms, 99),
                            "max": percentile(stats.poll_ms, 100)},
        "create_latency_ms": {"p50": percentile(stats.create_ms, 50),
                              "p99": percentile(stats.create_ms, 99)},
        "tasks_per_minute": round(len(stats.completed) / (elapsed / 60), 1) if elapsed else None,
        "downloaded_mb": round(stats.download_bytes / 1e6, 1),
        "rss_kb": {"start": rss_start.get("VmRSS"), "end": rss_end.get("VmRSS"),
                   "peak": rss_end.get("VmHWM")},
        # (seconds since start, VmRSS kB) every RSS_SAMPLE_SECONDS: growth vs a plateau.
        "rss_timeline": timeline,
        "emulator_exit_code": exit_code,
    }


def print_report(report: dict) -> None:
    rss = report["rss_kb"]
    print(f"kf2v-mock soak: {report['clients']} clients, {report['minutes']} min "
          f"({report['elapsed_seconds']} s with the drain)")
    print(f"  tasks created {report['created']}, completed {report['completed']}, "
          f"lost {report['lost']}, ended otherwise {report['ended_otherwise'] or 0}")
    print(f"  server knows {report['server_tasks']} tasks, "
          f"{report['server_tasks_not_acknowledged']} never acknowledged to a client")
    print(f"  {report['tasks_per_minute']} tasks/min, {report['downloaded_mb']} MB of video")
    print(f"  poll latency ms: p50 {report['poll_latency_ms']['p50']}, "
          f"p99 {report['poll_latency_ms']['p99']}, max {report['poll_latency_ms']['max']} "
          f"over {report['polls']} polls; create p50 {report['create_latency_ms']['p50']}, "
          f"p99 {report['create_latency_ms']['p99']}")
    print(f"  errors by code: {report['errors'] or 'none'}")
    print(f"  emulator RSS: start {rss['start']} kB, end {rss['end']} kB, peak {rss['peak']} kB")
    samples = report["rss_timeline"]
    if samples:
        step = max(1, len(samples) // 10)
        series = ", ".join(f"{t}s {kb // 1024 if kb else '?'}" for t, kb in samples[::step])
        print(f"  RSS over time (MB): {series}")
    if report["lost"]:
        print(f"  LOST: {report['lost_ids']}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--drain-seconds", type=float, default=120,
                        help="how long clients may keep polling their last task after the end")
    parser.add_argument("--upload-every", type=int, default=4,
                        help="every Nth task sends local files (SDK upload flow); 0: never")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    report = soak(args, extra)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    ok = (report["lost"] == 0 and not report["ended_otherwise"] and report["completed"] > 0
          and not report["hung_clients"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
