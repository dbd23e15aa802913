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

With a durable store the input frames are first written under ``inputs_dir/<ref>/`` (``keep_inputs``,
before the task is stored: the task row names the folder, ``Task.inputs``), each render reads them
from there, and they are deleted once the task's clip is written or the task can no longer need it;
after a crash ``resume`` renders again from them. Clips appear atomically (``media.render`` renames a
finished temp file into place), so a half-written clip is never served; ``remove_partial_files``
clears what a killed process left behind.

``render=False`` (``--no-render``, for benchmarks of everything else) writes no frames and no clip:
a task counts as rendered at once, and its result link answers 404.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..media.clip_request import RenderRequest, request_digest
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


@dataclass(frozen=True)
class Inputs:
    """A create's frames, kept for its render: on disk under ``inputs_dir/<ref>`` (a durable
    store), or held here (``frames``)."""
    ref: str | None
    frames: Frames | None = None


class Synthesizer:
    def __init__(self, service: TaskService, results_dir: Path, *, workers: int = 2,
                 preset: str = "veryfast", inputs_dir: Path | None = None,
                 cache: ClipCache | None = None, render: bool = True):
        self.service = service
        self.results_dir = results_dir
        self.preset = preset
        # None: frames are only held in memory until rendered (an ephemeral store).
        self.inputs_dir = inputs_dir
        self.cache = cache  # None: every task renders its own clip
        self.render = render
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

    def inputs_path(self, ref: str) -> Path:
        assert self.inputs_dir is not None
        return self.inputs_dir / ref

    async def keep_inputs(self, first: bytes, last: bytes | None) -> Inputs:
        """Keep a create's frames for its render, before the task is stored. With an inputs dir
        they are written there (off the loop, atomically: the folder is complete or absent), so
        the clip can be rendered again after a crash; raises ``OSError`` if the disk refuses."""
        if not self.render:
            return Inputs(None)
        if self.inputs_dir is None:
            return Inputs(None, (first, last))
        ref = secrets.token_hex(8)
        await asyncio.get_running_loop().run_in_executor(None, _write_inputs,
                                                         self.inputs_path(ref), first, last)
        return Inputs(ref)

    def discard_inputs(self, inputs: Inputs) -> None:
        """The task was not stored after all: its kept frames go."""
        if inputs.ref is not None:
            self.forget_inputs(inputs.ref)

    def accept(self, task: Task, bucket: str, inputs: Inputs) -> None:
        """Start rendering the stored ``task``'s clip from its kept ``inputs``."""
        if not self.render:
            try:
                self.service.mark_video_ready(task.task_id)
            except Exception:  # as a render whose result could not be recorded
                log.exception("could not record the render of task %s", task.task_id)
            return
        if inputs.ref is None:
            frames = inputs.frames
            assert frames is not None
            self._start(task, bucket, lambda: frames)
        else:
            self.resume(task, bucket)

    def resume(self, task: Task, bucket: str) -> None:
        """Render the clip from the frames kept on disk (also again, after a stopped process had
        not finished it)."""
        assert task.inputs is not None
        folder = self.inputs_path(task.inputs)
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

    def forget_inputs(self, ref: str) -> None:
        """Delete kept frames (off the loop); nothing to do without an inputs dir."""
        if self.inputs_dir is not None:
            self._in_background(shutil.rmtree, self.inputs_path(ref), True)

    def _track(self, job: asyncio.Future) -> None:
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _run(self, task: Task, request: Callable[[], RenderRequest], out: Path,
                   generation: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            seconds = await loop.run_in_executor(self._pool, _render_to, request, out, task,
                                                 self.cache)
            rendered = True
        except Exception:  # a render failure fails the task, never the server
            log.exception("render failed for task %s", task.task_id)
            rendered = False
        if generation != self._generation:
            return
        if rendered:
            log_event("render_finish", task, f"render finished in {seconds:.2f} s "
                      f"({task.width}x{task.height})", seconds=round(seconds, 3))
        try:
            # Recorded before the frames go: a crash in between only renders the clip again.
            if rendered:
                self.service.mark_video_ready(task.task_id)
            else:
                self.service.mark_render_failed(task.task_id)
        except Exception:  # the store refused: the frames stay, the next start renders again
            log.exception("could not record the render of task %s", task.task_id)
            return
        if task.inputs is not None:
            self.forget_inputs(task.inputs)

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
