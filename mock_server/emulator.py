"""One emulator instance: the clock, the store, the keys, the task service, the renderer and the
OSS stand-in, built from ``Settings``. Both regions' listeners serve the same instance.

With a data dir (and not ``in_memory``) the state is a ``SqliteStore`` there, and ``start()`` picks
up where a previous process on the same dir stopped, however it stopped (README, "Persistence").
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable

from .config import Settings
from .oss.signing import OssSigner
from .store.memory import InMemoryStore
from .store.sqlite import SqliteStore
from .tasks.accounts import KeyRing
from .tasks.clip_cache import ClipCache
from .tasks.clock import VirtualClock
from .tasks.ids import RequestIds
from .tasks.lifecycle import LifecycleLog
from .tasks.models import Task
from .tasks.regions import BEIJING, REGIONS
from .tasks.rendering import (PARTIAL_CLIP, PARTIAL_INPUTS, PARTIAL_UPLOAD, Synthesizer,
                              remove_partial_files)
from .tasks.service import TaskService
from .tasks.store_interface import Store
from .traffic.chaos import ChaosRun
from .traffic.faults import FaultEngine
from .traffic.input_frames import InputFrames
from .traffic.journal import Journal
from .traffic.quotas import Quotas

log = logging.getLogger("kf2v_mock")
CLOCK_META = "clock"
OSS_META = "oss_signer"
RUNS_META = "runs"  # starts on this data dir (seeded request ids differ from one run to the next)
CLIP_CACHE_DIR = "clip-cache"
SWEEP_BATCH = 1000  # expired uploads or policies forgotten per store call


class Emulator:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self._own_data_dir = settings.data_dir is None
        self.data_dir = Path(settings.data_dir or tempfile.mkdtemp(prefix="kf2v-mock-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if store is None:
            durable = settings.data_dir is not None and not settings.in_memory
            store = SqliteStore(self.data_dir) if durable else InMemoryStore()
        self.store = store
        self.clock = self._open_clock()
        self.keys = KeyRing(settings.api_keys)
        self.service = TaskService(self.store, self.clock, seed=settings.seed,
                                   timing=settings.timing, max_running=settings.max_running)
        self._not_before(self.service.latest_event)
        self.synthesizer = Synthesizer(self.service, self.data_dir / "oss",
                                       workers=settings.render_workers,
                                       preset=settings.render_preset,
                                       inputs_dir=self.inputs_dir if store.durable else None,
                                       cache=self._clip_cache(), render=settings.render)
        saved_signer = self.store.get_meta(OSS_META)
        self.oss = (OssSigner.from_meta(saved_signer, self.data_dir / "oss") if saved_signer
                    else OssSigner.create(self.data_dir / "oss"))
        if saved_signer is None:
            self.store.put_meta(OSS_META, self.oss.to_meta())
        # Fault-rule draws are always seeded (0 without --seed): a rule fires the same way every run.
        self.faults = FaultEngine(self.store, seed=settings.seed if settings.seed is not None else 0)
        runs = int(self.store.get_meta(RUNS_META) or 0) + 1
        self.store.put_meta(RUNS_META, str(runs))
        self.request_ids = RequestIds(settings.seed, runs)
        self.quotas = Quotas(self.clock, submit_rps=settings.submit_rps,
                             query_qps=settings.query_qps, policy_qps=settings.policy_qps)
        self.journal = Journal(settings.journal_size, settings.journal_max_bytes)
        self.input_frames = InputFrames()  # what the console shows of each task's request
        # The seeded chaos run, when one is on (--chaos, POST /_mock/chaos).
        self._chaos: ChaosRun | None = None
        if settings.chaos_seed is not None:
            self.chaos = ChaosRun(settings.chaos_seed, settings.chaos_profile,
                                  timing=settings.timing)
        # Injected latency sleeps through this (tests may swap in a recorder).
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # Local port -> region, filled in once the listeners are bound (port 0 picks a free one).
        self.listener_regions: dict[int, str] = {}
        self.service.on_expired = self._forget_task_files
        self.lifecycle = LifecycleLog(self.service.find, self.clock)
        self.lifecycle.adopt(self.service.iter_tasks())  # a data dir picked up again: no past lines
        self.service.on_changed = self.lifecycle.changed
        self.clock.on_change(self._save_clock)
        self.clock.on_change(self.sweep)

    def _clip_cache(self) -> ClipCache | None:
        if self.settings.clip_cache_mb <= 0:
            return None
        return ClipCache(self.data_dir / CLIP_CACHE_DIR, self.settings.clip_cache_mb * 1024 * 1024)

    @property
    def chaos(self) -> ChaosRun | None:
        return self._chaos

    @chaos.setter
    def chaos(self, run: ChaosRun | None) -> None:
        self._chaos = run
        # A chaos run is asked to replay exactly: without --seed, its seed (and label) also make
        # task ids and timelines reproducible while it is on (random again once it stops).
        if self.settings.seed is None:
            self.service.seed = None if run is None else f"chaos:{run.seed}:{run.label}"

    @property
    def inputs_dir(self) -> Path:
        return self.data_dir / "inputs"

    def region_for_port(self, port: int | None) -> str:
        return self.listener_regions.get(port or -1, BEIJING)

    # --- the clock across restarts -------------------------------------------------------------
    def _open_clock(self) -> VirtualClock:
        saved = self.store.get_meta(CLOCK_META)
        if saved is None:  # a fresh data dir: the configured start
            clock = VirtualClock(self.settings.clock_start, frozen=self.settings.clock_frozen)
        else:
            clock = VirtualClock.resume(json.loads(saved))
        self._save_clock(clock)
        return clock

    def _not_before(self, latest: datetime | None) -> None:
        """Never before anything already recorded, even if the host's clock went back (the
        service has read every task by now)."""
        if latest is not None and latest > self.clock.now():
            self.clock.set(latest)  # no listeners yet: nothing else runs
            self._save_clock(self.clock)

    def _save_clock(self, clock_or_now: VirtualClock | datetime) -> None:
        # A running clock's reading follows from (reading, wall time) saved at its last change, so
        # only changes (advance/set/freeze) are written.
        clock = clock_or_now if isinstance(clock_or_now, VirtualClock) else self.clock
        self.store.put_meta(CLOCK_META, json.dumps(clock.snapshot()))

    # --- startup and housekeeping --------------------------------------------------------------
    async def start(self) -> None:
        """Before serving: clear half-written files and render again the clips that a previous
        process on this data dir accepted but had not finished."""
        loop = asyncio.get_running_loop()
        if self.synthesizer.cache is not None:
            await loop.run_in_executor(None, self.synthesizer.cache.load)
        if not self.store.durable:
            return
        oss = self.data_dir / "oss"
        places = [(oss / region.result_bucket, PARTIAL_CLIP) for region in REGIONS.values()]
        places += [(oss / "uploads", PARTIAL_UPLOAD), (self.inputs_dir, PARTIAL_INPUTS)]
        removed = await loop.run_in_executor(None, remove_partial_files, places)
        if removed:
            log.info("removed %d half-written file(s) left by a previous run", len(removed))
        kept = set(await loop.run_in_executor(None, _listdir, self.inputs_dir))
        needed, resumed, lost = set(), 0, 0
        for task in self.service.unfinished():
            if task.inputs in kept:
                needed.add(task.inputs)
                self.synthesizer.resume(task, REGIONS[task.region].result_bucket)
                resumed += 1
            else:
                # Its frames are gone (deleted by hand, or a schema 1 create cut off before
                # they were written): its clip can never be made. It fails like a render would,
                # and keeps its place in its queue (dropping it would move the others).
                self.service.mark_render_failed(task.task_id)
                lost += 1
        for ref in kept - needed:
            self.synthesizer.forget_inputs(ref)  # of a task done, reset, swept or never stored
        if resumed:
            log.info("rendering %d unfinished clip(s) again", resumed)
        if lost:
            log.warning("%d unfinished task(s) have lost their input frames: they fail", lost)

    def checkpoint(self) -> None:
        """Disk housekeeping of the store; blocks, so the app calls it in a worker thread."""
        self.store.checkpoint()

    def sweep(self, now: datetime | None = None) -> None:
        """Forget what has expired by ``now``: tasks and their clips (24 h), uploads (48 h) and
        upload policies; runs on every clock jump and once a second while the clock runs."""
        now = now or self.clock.now()
        self.lifecycle.tick(now)  # transitions due are logged before the sweep forgets tasks
        self.service.sweep_expired(now)
        while uploads := self.store.expired_uploads(now, SWEEP_BATCH):
            self.store.delete_uploads([u.key for u in uploads])
            for upload in uploads:
                self.synthesizer.remove_file(Path(upload.path))
        while policies := self.store.expired_policies(now, SWEEP_BATCH):
            self.store.delete_policies([p.upload_dir for p in policies])

    def _forget_task_files(self, task: Task) -> None:
        self.lifecycle.forget(task)
        if task.video_key:
            bucket = REGIONS[task.region].result_bucket
            self.synthesizer.remove_file(self.synthesizer.path_for(bucket, task.video_key))
        if task.inputs:
            self.synthesizer.forget_inputs(task.inputs)

    async def reset(self) -> None:
        """Forget every task, upload, file, fault rule, journal entry and quota count; keys, seed
        and clock stay as they are (a chaos run restarts its schedule)."""
        self.synthesizer.reset()
        await self.synthesizer.drain()
        self.store.clear()
        self.service.reload()
        self.faults.reset_ids()
        self.request_ids.restart()
        self.journal.clear()
        self.input_frames.clear()
        self.lifecycle.reset()
        self.quotas.clear()
        if self.chaos is not None:
            self.chaos.restart()  # the schedule starts again from its first create
        await asyncio.get_running_loop().run_in_executor(None, self._remove_files)

    def _remove_files(self) -> None:
        shutil.rmtree(self.data_dir / "oss", ignore_errors=True)
        shutil.rmtree(self.inputs_dir, ignore_errors=True)

    async def close(self) -> None:
        await self.synthesizer.close()
        self.store.close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _listdir(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except FileNotFoundError:
        return []
