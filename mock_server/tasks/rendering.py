"""Runs clip renders out of the server process with bounded parallelism and reports back to the
tasks.

Each render runs in a render worker process (``media.worker``: the frame pipeline and the ffmpeg it
feeds, at a lower CPU priority); a thread of this module's pool only waits for it, so neither the
event loop nor the server's GIL does any per-frame work. With a clip cache (``clip_cache``), a clip
already rendered for identical inputs is linked into place instead of rendered again.

Renders start as soon as a task is accepted (not when its virtual start time comes), so a clip is
usually on disk before the clock reaches the task's end; a task whose clip is not written yet keeps
reporting RUNNING (``Task.status_at``). perf-notes §1.4: one encode already uses ~1.6 of the 2 cores,
so the default pool is small.

With a durable store the input frames are first written under ``inputs_dir/<task_id>/`` (before the
create is answered), each render reads them from there, and they are deleted once the task's clip is
written or the task can no longer need it; after a crash ``resume`` renders again from them. Clips
appear atomically (``media.render`` renames a finished temp file into place), so a half-written
clip is never served; ``remove_partial_files`` clears what a killed process left behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..media.render import RenderRequest, request_digest
from ..media.worker import render_in_worker
from .clip_cache import ClipCache
from .lifecycle import log_event
from .models import Task
from .service import TaskService

log = logging.getLogger("kf2v_mock.rendering")

Frames = tuple[bytes, "bytes | None"]  # first, last
# Temp names of half-written files (see remove_partial_files).
PARTIAL_CLIP = re.compile(r"^\..+\.part\.mp4$")  # media/render.py: .<name>.<random>.part.mp4
PARTIAL_UPLOAD = re.compile(r"^\.upload-[a-z0-9_]+$")  # oss/handlers.py _stream_to_file
PARTIAL_INPUTS = re.compile(r"^\..+\.part$")  # _write_inputs


class Synthesizer:
    def __init__(self, service: TaskService, results_dir: Path, *, workers: int = 2,
                 preset: str = "veryfast", inputs_dir: Path | None = None,
                 cache: ClipCache | None = None):
        self.service = service
        self.results_dir = results_dir
        self.preset = preset
        # None: frames are only held in memory until rendered (an ephemeral store).
        self.inputs_dir = inputs_dir
        self.cache = cache  # None: every task renders its own clip
        # Each thread waits for one render worker process (media.worker) at a time.
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

    def inputs_path(self, task_id: str) -> Path:
        assert self.inputs_dir is not None
        return self.inputs_dir / task_id

    async def accept(self, task: Task, bucket: str, first: bytes, last: bytes | None) -> None:
        """Start rendering ``task``'s clip. With an inputs dir the frames are written there first
        (off the loop, atomically), so once this returns the clip can be rendered again after a
        crash; the create must be answered only after it."""
        if self.inputs_dir is None:
            self._start(task, bucket, lambda: (first, last))
            return
        folder = self.inputs_path(task.task_id)
        await asyncio.get_running_loop().run_in_executor(None, _write_inputs, folder, first, last)
        self._start(task, bucket, lambda: _read_inputs(folder))

    def resume(self, task: Task, bucket: str) -> None:
        """Render again a clip that a stopped process had not finished, from the kept frames."""
        folder = self.inputs_path(task.task_id)
        self._start(task, bucket, lambda: _read_inputs(folder))

    def _start(self, task: Task, bucket: str, frames: Callable[[], Frames]) -> None:
        def request() -> RenderRequest:  # runs in the worker: kept frames are read there
            first, last = frames()
            return RenderRequest(
                first_image=first, last_image=last, width=task.width, height=task.height,
                seed=task.seed, prompt=task.spec.prompt or "", template=task.spec.template,
                watermark=task.spec.watermark, preset=self.preset)
        out = self.path_for(bucket, task.video_key or f"{task.task_id}.mp4")
        self._track(asyncio.get_running_loop().create_task(
            self._run(task, request, out, self._generation)))

    def forget_inputs(self, task_id: str) -> None:
        """Delete a task's kept frames (off the loop); nothing to do without an inputs dir."""
        if self.inputs_dir is not None:
            self._in_background(shutil.rmtree, self.inputs_path(task_id), True)

    def _track(self, job: asyncio.Future) -> None:
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _run(self, task: Task, request: Callable[[], RenderRequest], out: Path,
                   generation: int) -> None:
        loop = asyncio.get_running_loop()
        task_id = task.task_id
        try:
            seconds = await loop.run_in_executor(self._pool, _render_to, request, out, task,
                                                 self.cache)
        except Exception:  # a render failure fails the task, never the server
            log.exception("render failed for task %s", task_id)
            if generation == self._generation:
                self.service.mark_render_failed(task_id)
                self.forget_inputs(task_id)
            return
        if generation == self._generation:
            log_event("render_finish", task, f"render finished in {seconds:.2f} s "
                      f"({task.width}x{task.height})", seconds=round(seconds, 3))
            # Recorded before the frames go: a crash in between only renders the clip again.
            self.service.mark_video_ready(task_id)
            self.forget_inputs(task_id)

    async def drain(self) -> None:
        """Wait until every accepted render and file deletion has finished (tests use this
        instead of sleeping)."""
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    def reset(self) -> None:
        self._generation += 1

    def remove_file(self, path: Path) -> None:
        """Delete ``path`` off the event loop (or right here when no loop runs)."""
        self._in_background(_unlink, path)

    def _in_background(self, function: Callable, *args) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            function(*args)
            return
        self._track(loop.run_in_executor(None, function, *args))

    async def close(self) -> None:
        """Stop: renders not started yet are dropped (a durable store renders them again at the
        next start), the ones under way finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.drain()
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)


def _render_to(request: Callable[[], RenderRequest], out: Path, task: Task,
               cache: ClipCache | None) -> float:
    """Runs in a pool thread: render ``out`` in a worker process, or link it from the cache;
    returns the seconds it took."""
    started = time.perf_counter()
    log_event("render_start", task, "render started")
    out.parent.mkdir(parents=True, exist_ok=True)
    req = request()
    if cache is None:
        render_in_worker(req, out)
        return time.perf_counter() - started
    digest = request_digest(req)
    with cache.lock(digest):  # an identical render under way: wait for it, then link its clip
        if cache.place(digest, out):
            return time.perf_counter() - started
        render_in_worker(req, out)
        try:
            cache.store(digest, out)
        except OSError:  # the clip is in place; only later tasks miss the cache
            log.exception("could not keep the clip of %s in the cache", out.name)
    return time.perf_counter() - started


def _write_inputs(folder: Path, first: bytes, last: bytes | None) -> None:
    """Write the frames to a temp dir and rename it into place: ``folder`` is complete or absent."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        (tmp / "first").write_bytes(first)
        if last is not None:
            (tmp / "last").write_bytes(last)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_inputs(folder: Path) -> Frames:
    last = folder / "last"
    return (folder / "first").read_bytes(), last.read_bytes() if last.exists() else None


def remove_partial_files(places: list[tuple[Path, re.Pattern]]) -> list[Path]:
    """Delete the temp files a killed process left half-written: in each ``(root, pattern)``,
    whatever matches the pattern (e.g. result buckets with ``PARTIAL_CLIP``). Returns what was
    removed. Run before serving anything."""
    removed = []
    for root, pattern in places:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*filenames, *dirnames]:
                if pattern.match(name):
                    path = Path(dirpath, name)
                    shutil.rmtree(path) if path.is_dir() else _unlink(path)
                    removed.append(path)
            dirnames[:] = [d for d in dirnames if not pattern.match(d)]
    return removed


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
