"""One emulator instance: the clock, the store, the keys, the task service, the renderer and the
OSS stand-in, built from ``Settings``. Both regions' listeners serve the same instance."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable

from .accounts import KeyRing
from .clock import VirtualClock
from .config import Settings
from .faults import FaultEngine
from .journal import Journal
from .models import Task
from .oss import OssSigner
from .quotas import Quotas
from .regions import BEIJING, REGIONS
from .service import TaskService
from .store import InMemoryStore, Store
from .synthesis import Synthesizer


class Emulator:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self._own_data_dir = settings.data_dir is None
        self.data_dir = Path(settings.data_dir or tempfile.mkdtemp(prefix="kf2v-mock-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock = VirtualClock(settings.clock_start, frozen=settings.clock_frozen)
        self.store = store or InMemoryStore()
        self.keys = KeyRing(settings.api_keys)
        self.service = TaskService(self.store, self.clock, seed=settings.seed,
                                   timing=settings.timing, max_running=settings.max_running)
        self.synthesizer = Synthesizer(self.service, self.data_dir / "oss",
                                       workers=settings.render_workers,
                                       preset=settings.render_preset)
        self.oss = OssSigner.create(self.data_dir / "oss")
        self.faults = FaultEngine(self.store, seed=settings.seed)
        self.quotas = Quotas(self.clock, submit_rps=settings.submit_rps,
                             query_qps=settings.query_qps, policy_qps=settings.policy_qps)
        self.journal = Journal(settings.journal_size)
        # Injected latency sleeps through this (tests may swap in a recorder).
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # Local port -> region, filled in once the listeners are bound (port 0 picks a free one).
        self.listener_regions: dict[int, str] = {}
        self.service.on_expired = self._forget_video
        self.clock.on_change(self.sweep)

    def region_for_port(self, port: int | None) -> str:
        return self.listener_regions.get(port or -1, BEIJING)

    def sweep(self, now: datetime | None = None) -> None:
        """Forget what has expired by ``now``: tasks and their clips (24 h), uploads (48 h) and
        upload policies; runs on every clock jump and once a second while the clock runs."""
        now = now or self.clock.now()
        self.service.sweep_expired(now)
        for upload in self.store.uploads():
            if now >= upload.expires_at:
                self.store.delete_upload(upload.key)
                self.synthesizer.remove_file(Path(upload.path))
        for policy in self.store.policies():
            if now >= policy.expires:
                self.store.delete_policy(policy.upload_dir)

    def _forget_video(self, task: Task) -> None:
        if task.video_key:
            bucket = REGIONS[task.region].result_bucket
            self.synthesizer.remove_file(self.synthesizer.path_for(bucket, task.video_key))

    async def reset(self) -> None:
        """Forget every task, upload, file, fault rule, journal entry and quota count; keys, seed
        and clock stay as they are."""
        self.synthesizer.reset()
        await self.synthesizer.drain()
        self.store.clear()
        self.faults.reset_ids()
        self.journal.clear()
        self.quotas.clear()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(self.data_dir / "oss", ignore_errors=True))

    async def close(self) -> None:
        await self.synthesizer.close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
