#!/usr/bin/env python3
"""Scale: do create, query, list and cancel cost the same with 100,000 tasks stored as with 1,000?

Not a test (tests/test_scale.py checks what each operation touches; a tiny run of this script is
tests/test_bench_scale.py). For each store - in memory (``--in-memory``) and SQLite (``--data-dir``)
- and each size (1k, 10k, 100k by default), one ``kf2v-mock serve`` process (``ServeProcess``;
``--no-quotas --no-render``, clock frozen) is filled with that many tasks (tiny 240x240 frames, no
clips) by ``--concurrency`` clients over ``--keys`` accounts, then its clock moves an hour on so the
stored tasks are in every state. Then all the servers are measured side by side: each sample of
each operation goes to every server in turn (in a shuffled order), one request at a time, so the
shared machine's noise hits every size alike:

- create: one more task (data URLs);
- query:  ``GET /api/v1/tasks/{id}`` of a random stored task;
- list:   ``GET /api/v1/tasks`` over the last 24 hours, cycling through no filter, a status
          filter and model + status filters on page 3 (every list counts all its matches);
- cancel: ``POST .../cancel`` of a task just created (PENDING);

then ``GET /_mock/tasks`` (one page, the default 1000) five times each, every server's RSS and data
dir (WAL included), and the time the largest SQLite store takes to start again. Each figure is
printed with its ratio to the smallest size's. Targets (issue 15): every p50 within 1.5x, memory per
task flat, the data dir growing linearly with small rows.

    .venv/bin/python benchmarks/bench_scale.py                      # 1k, 10k, 100k; both stores
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000,10000 --stores sqlite --samples 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from PIL import Image  # noqa: E402

from mock_server.testing.serve_process import ServeProcess  # noqa: E402

CREATE = "/api/v1/services/aigc/image2video/video-synthesis"
MODELS = ("wan2.2-kf2v-flash", "wanx2.1-kf2v-plus")
RESOLUTION = {"wan2.2-kf2v-flash": "480P", "wanx2.1-kf2v-plus": "720P"}
OPERATIONS = ("create", "query", "list", "cancel")
# The lists measured, in turn: no filter, a status filter, model and status filters on page 3.
LISTS = ["", "&status=SUCCEEDED", "&model_name=wanx2.1-kf2v-plus&status=PENDING&page_no=3"]


def tiny_frame(shade: int) -> str:
    """A 240x240 PNG (the smallest side accepted) of one colour: a few hundred bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (240, 240), (shade, 120, 255 - shade)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


FIRST, LAST = tiny_frame(40), tiny_frame(200)


class Bench:
    def __init__(self, server: ServeProcess, keys: list[str], seed: int):
        self.server = server
        self.root = server.root_url("cn-beijing")
        self.keys = keys
        self.rng = random.Random(seed)
        self.task_ids: list[tuple[str, str]] = []  # (task id, key)
        self.session: aiohttp.ClientSession | None = None
        self.baseline_rss = 0.0  # MB, before any task
        self.fill_s = 0.0

    async def open(self) -> "Bench":
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), trust_env=False,
            timeout=aiohttp.ClientTimeout(total=600))
        return self

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def request(self, method: str, path: str, key: str | None = None, **kwargs) -> dict:
        headers = {**(self.headers(key) if key else {}), **kwargs.pop("headers", {})}
        async with self.session.request(method, self.root + path, headers=headers,
                                        **kwargs) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {body}")
            return body

    async def create(self, key: str, n: int) -> str:
        model = MODELS[n % len(MODELS)]
        body = {"model": model, "input": {"prompt": f"bench task {n}", "first_frame_url": FIRST,
                                          "last_frame_url": LAST},
                "parameters": {"resolution": RESOLUTION[model]}}
        answer = await self.request("POST", CREATE, key, json=body,
                                    headers={"X-DashScope-Async": "enable"})
        task_id = answer["output"]["task_id"]
        self.task_ids.append((task_id, key))
        return task_id

    async def fill(self, target: int, concurrency: int) -> float:
        """Create tasks until ``target`` are stored; seconds it took."""
        started = time.perf_counter()
        counter = iter(range(len(self.task_ids), target))

        async def worker(key: str) -> None:
            for n in counter:
                await self.create(key, n)
        await asyncio.gather(*(worker(self.keys[i % len(self.keys)]) for i in range(concurrency)))
        return time.perf_counter() - started

    async def timed(self, make) -> float:
        started = time.perf_counter()
        await make()
        return (time.perf_counter() - started) * 1000

    async def measure_once(self, n: int) -> dict[str, float]:
        """One sample of each operation, in milliseconds."""
        key = self.keys[n % len(self.keys)]
        times = {"create": await self.timed(lambda: self.create(key, n))}
        task_id, owner = self.rng.choice(self.task_ids)
        times["query"] = await self.timed(
            lambda: self.request("GET", f"/api/v1/tasks/{task_id}", owner))
        query = "?page_size=10" + LISTS[n % len(LISTS)]
        times["list"] = await self.timed(lambda: self.request("GET", f"/api/v1/tasks{query}", key))
        fresh = await self.create(key, n)
        times["cancel"] = await self.timed(
            lambda: self.request("POST", f"/api/v1/tasks/{fresh}/cancel", key))
        return times

    async def clock(self, **change) -> None:
        await self.request("POST", "/_mock/clock", json=change)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def rss_mb(pid: int) -> float:  # MiB
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_mb(path: Path | None) -> float | None:
    if path is None:
        return None
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2 ** 20  # MiB


async def start_filled(store: str, size: int, args: argparse.Namespace, workdir: Path,
                       keys: list[str]) -> tuple[ServeProcess, Bench, Path | None]:
    """A server of ``store`` holding ``size`` tasks, its clock then an hour on."""
    flags = ["--no-quotas", "--no-render", "--seed", "1",
             *(f for key in keys for f in ("--api-key", f"cn-beijing={key}"))]
    name = f"{store}-{size}"
    data_dir = workdir / f"data-{name}"
    if store == "memory":
        flags.append("--in-memory")
    server = ServeProcess(*flags, data_dir=data_dir, workdir=workdir / f"work-{name}").start()
    bench = await Bench(server, keys, args.seed).open()
    try:
        await bench.clock(frozen=True)
        bench.baseline_rss = rss_mb(server.pid)
        bench.fill_s = await bench.fill(size, args.concurrency)
        await bench.clock(advance_seconds=3600)  # stored tasks in every state
        await bench.request("GET", "/api/v1/tasks", keys[0])  # files that hour's status changes
    except BaseException:  # interrupted while filling: this server is not in the caller's list
        await bench.close()
        server.stop()
        server.cleanup()
        raise
    print(f"  {name}: filled in {bench.fill_s:.0f} s", flush=True)
    return server, bench, data_dir if store == "sqlite" else None


async def run(stores: list[str], sizes: list[int], args: argparse.Namespace,
              workdir: Path) -> list[dict]:
    """Fill one server per (store, size), then measure them all side by side: each sample of
    each operation goes to every server in turn, so the machine's noise hits all alike."""
    keys = [f"sk-bench-{n}" for n in range(args.keys)]
    servers = []
    try:
        for store in stores:
            for size in sizes:
                servers.append((store, size, *await start_filled(store, size, args, workdir,
                                                                  keys)))
        times = {(store, size): {name: [] for name in OPERATIONS}
                 for store, size, *_ in servers}
        order = list(range(len(servers)))
        for n in range(args.samples):
            random.Random(n).shuffle(order)
            for index in order:
                store, size, _, bench, _ = servers[index]
                sample = await bench.measure_once(n)
                for name in OPERATIONS:
                    times[store, size][name].append(sample[name])
        dumps = {(store, size): [] for store, size, *_ in servers}
        for _ in range(5):
            for store, size, _, bench, _ in servers:
                dumps[store, size].append(await bench.timed(
                    lambda: bench.request("GET", "/_mock/tasks")))
        rows = []
        for store, size, server, bench, data_dir in servers:
            row = {"store": store, "size": size, "stored": len(bench.task_ids),
                   "fill_s": bench.fill_s, "dump_ms": statistics.median(dumps[store, size]),
                   "rss_mb": rss_mb(server.pid), "baseline_rss_mb": bench.baseline_rss,
                   "data_mb": dir_mb(data_dir)}
            for name in OPERATIONS:
                row[f"{name}_p50"] = statistics.median(times[store, size][name])
                row[f"{name}_p99"] = percentile(times[store, size][name], 99)
            rows.append(row)
        if args.restart and "sqlite" in stores:  # the largest SQLite store, stopped and started
            store, size, server, bench, _ = next(s for s in reversed(servers) if s[0] == "sqlite")
            server.stop()
            started = time.perf_counter()
            server.start()
            restart_s = time.perf_counter() - started
            row = next(r for r in rows if (r["store"], r["size"]) == (store, size))
            row["restart_s"] = restart_s
    finally:
        for _, _, server, bench, _ in servers:
            await bench.close()
            server.stop()
            server.cleanup()
    return rows


def table(rows: list[dict]) -> str:
    """The figures as a markdown table; ratios to the store's smallest size. Memory and disk per
    task: for the smallest size, what it holds over an empty server; for the others, what each
    task added since the size before (fixed costs - the request journal, caches - drop out)."""
    head = ("| store | tasks | create p50 / p99 ms | query p50 / p99 ms | list p50 / p99 ms | "
            "cancel p50 / p99 ms | `GET /_mock/tasks` ms | RSS MB (KB per task) | data dir MB "
            "(KB per task) |")
    lines = [head, "|" + "---|" * 9]
    previous: dict[str, dict] = {}
    first: dict[str, dict] = {}
    for row in rows:
        base = first.setdefault(row["store"], row)
        before = previous.get(row["store"])
        previous[row["store"]] = row

        def ratio(value: float, reference: float) -> str:
            return "" if row is base else f" ({value / reference:.2f}x)"

        def per_task(value: float, empty: float, key: str) -> str:
            if before is None:
                return f"{(value - empty) * 1024 / row['stored']:.2f}"
            return f"{(value - before[key]) * 1024 / (row['stored'] - before['stored']):.2f}"
        cells = [row["store"], f"{row['stored']:,}"]
        for name in OPERATIONS:
            p50, p99 = row[f"{name}_p50"], row[f"{name}_p99"]
            cells.append(f"{p50:.2f}{ratio(p50, base[f'{name}_p50'])} / {p99:.2f}")
        cells.append(f"{row['dump_ms']:.1f}{ratio(row['dump_ms'], base['dump_ms'])}")
        rss_per_task = per_task(row["rss_mb"], row["baseline_rss_mb"], "rss_mb")
        cells.append(f"{row['rss_mb']:.0f} ({rss_per_task})")
        if row["data_mb"] is None:
            cells.append("-")
        else:
            cells.append(f"{row['data_mb']:.1f} ({per_task(row['data_mb'], 0, 'data_mb')})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # so that every server started is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="stored tasks to measure at, comma-separated (ascending)")
    parser.add_argument("--stores", default="memory,sqlite", help="memory, sqlite or both")
    parser.add_argument("--samples", type=int, default=300, help="of each operation per size")
    parser.add_argument("--concurrency", type=int, default=8, help="clients filling the store")
    parser.add_argument("--keys", type=int, default=8, help="accounts the tasks are spread over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-restart", dest="restart", action="store_false",
                        help="do not time a restart of the SQLite store at the largest size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="kf2v-bench-scale-") as tmp:
        rows = asyncio.run(run(args.stores.split(","), sizes, args, Path(tmp)))
    load_after = os.getloadavg()
    print()
    print(table(rows))
    for row in rows:
        if "restart_s" in row:
            print(f"\nrestart of the sqlite store at {row['stored']:,} tasks: "
                  f"{row['restart_s']:.1f} s (derives every queue and index from the rows)")
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load_before": load_before,
                                         "load_after": load_after}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
