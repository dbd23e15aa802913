"""Runs clip renders off the event loop with bounded parallelism and reports back to the tasks.

Renders start as soon as a task is accepted (not when its virtual start time comes), so a clip is
usually on disk before the clock reaches the task's end; a task whose clip is not written yet keeps
reporting RUNNING (``Task.status_at``). perf-notes §1.4: one encode already uses ~1.6 of the 2 cores,
so the default pool is small.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .media.render import RenderRequest, render_clip
from .models import Task
from .service import TaskService

log = logging.getLogger("kf2v_mock.synthesis")


class Synthesizer:
    def __init__(self, service: TaskService, results_dir: Path, *, workers: int = 2,
                 preset: str = "veryfast"):
        self.service = service
        self.results_dir = results_dir
        self.preset = preset
        # Threads drive ffmpeg subprocesses; numpy and the pipe writes release the GIL.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kf2v-render")
        # Renders and file deletions still under way; drain() waits for all of them.
        self._jobs: set[asyncio.Future] = set()
        self._generation = 0  # bumped by reset(): results of older renders are dropped

    def path_for(self, bucket: str, key: str) -> Path:
        """Where ``bucket``/``key`` lives; a key with ``..`` that would leave its bucket (for
        another bucket or the uploads) raises ``ValueError``."""
        bucket_dir = (self.results_dir / bucket).resolve()
        path = (bucket_dir / key).resolve()
        if not path.is_relative_to(bucket_dir):
            raise ValueError("object key escapes its bucket")
        return path

    def submit(self, task: Task, bucket: str, first: bytes, last: bytes | None) -> None:
        request = RenderRequest(
            first_image=first, last_image=last, width=task.width, height=task.height,
            seed=task.seed, prompt=task.spec.prompt or "", template=task.spec.template,
            watermark=task.spec.watermark, preset=self.preset)
        out = self.path_for(bucket, task.video_key or f"{task.task_id}.mp4")
        self._track(asyncio.get_running_loop().create_task(
            self._run(task.task_id, request, out, self._generation)))

    def _track(self, job: asyncio.Future) -> None:
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _run(self, task_id: str, request: RenderRequest, out: Path, generation: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, _render_to, request, out)
        except Exception:  # a render failure fails the task, never the server
            log.exception("render failed for task %s", task_id)
            if generation == self._generation:
                self.service.mark_render_failed(task_id)
            return
        if generation == self._generation:
            self.service.mark_video_ready(task_id)

    async def drain(self) -> None:
        """Wait until every accepted render and file deletion has finished (tests use this
        instead of sleeping)."""
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    def reset(self) -> None:
        self._generation += 1

    def remove_file(self, path: Path) -> None:
        """Delete ``path`` off the event loop (or right here when no loop runs)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _unlink(path)
            return
        self._track(loop.run_in_executor(None, _unlink, path))

    async def close(self) -> None:
        await self.drain()
        self._pool.shutdown(wait=True)


def _render_to(request: RenderRequest, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    render_clip(request, out)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
