"""Render worker processes: ``render_in_worker(req, out)`` runs ``render_clip`` in a separate Python
process (``python -m mock_server.media.worker``) instead of the caller's, so a server's event loop
and its GIL never do per-frame work; the worker and its ffmpeg run at the lowest CPU priority
(``WORKER_NICE``), so requests are served first whenever both want a core.

A worker stays in its caller's session. Linux with ``sched_autogroup_enabled`` (most desktop and
cloud kernels) shares the CPU fairly between sessions first and applies niceness only inside one:
a worker in a session of its own competed with the server as an equal however nice it was, and
polls stalled for 40-150 ms while clips rendered.

Workers are kept and reused (starting one costs about 0.2 s of imports): a caller takes an idle one
or starts one, sends it one job, blocks until the answer, and gives it back. Any thread may do that
(the caller's thread only sleeps on a pipe meanwhile); at most ``MAX_IDLE`` idle workers are kept per
process, shared by every emulator in it.

The protocol on the worker's stdin/stdout: 8-byte big-endian length + pickle, one job
``(RenderRequest, out_path)`` then one answer ``("ok", "")`` or ``("error", "Type: message",
traceback)``. The parent is trusted (it started the worker).

A worker leads its own process group (never its own session, see above) and exits when its
parent does, however the parent ends: it checks ``os.getppid()`` a few times a second and then
kills its group (itself and the ffmpeg under it), so a ``kill -9`` of a server leaves no renders
behind; the half-written ``.part`` file stays for the next start to remove. A worker that dies
mid-job fails that job (``RenderError``).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import BinaryIO

from .clip_request import RenderError, RenderRequest

WORKER_NICE = 19  # added niceness of workers and their ffmpeg: the lowest, still not starved
MAX_IDLE = 4
_PARENT_CHECK_SECONDS = 0.1
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding mock_server/


class WorkerProcess:
    """One worker process, used by one caller at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        # process_group, not start_new_session: a new session would be a new autogroup, where
        # WORKER_NICE no longer ranks the worker below the server (module docstring).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mock_server.media.worker", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, process_group=0)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def render(self, req: RenderRequest, out_path: str | os.PathLike[str]) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            _send(self.process.stdin, (req, os.fspath(out_path)))
            answer = _receive(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            answer = None
        if answer is None:
            self.close(kill=True)
            raise RenderError(f"the render worker died (exit status {self.process.poll()})")
        if answer[0] != "ok":
            raise RenderError(f"{answer[1]}\n{answer[2]}")

    def close(self, kill: bool = False) -> None:
        """Stop the worker: at once with ``kill``, else after its job (EOF on its stdin)."""
        try:
            if kill:
                os.killpg(self.process.pid, signal.SIGKILL)
            elif self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=None if kill else 30)
        except subprocess.TimeoutExpired:
            self.close(kill=True)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


_idle: list[WorkerProcess] = []
_idle_lock = threading.Lock()


def render_in_worker(req: RenderRequest, out_path: str | os.PathLike[str]) -> None:
    """``render_clip(req, out_path)`` in a worker process; blocks the calling thread (only)."""
    with _idle_lock:
        worker = _idle.pop() if _idle else None
    if worker is None or not worker.alive:
        worker = WorkerProcess()
    try:
        worker.render(req, out_path)
    finally:
        _give_back(worker)


def _give_back(worker: WorkerProcess) -> None:
    if not worker.alive:  # died mid-job: already reaped by render()
        return
    with _idle_lock:
        if len(_idle) < MAX_IDLE:
            _idle.append(worker)
            return
    worker.close()


@atexit.register
def close_idle_workers() -> None:
    with _idle_lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


# --- both ends of the pipe ----------------------------------------------------------------------
def _send(stream: BinaryIO, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO):
    """The next value, or None at end of stream."""
    head = _read_exactly(stream, 8)
    if head is None:
        return None
    data = _read_exactly(stream, int.from_bytes(head, "big"))
    return None if data is None else pickle.loads(data)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the worker side ----------------------------------------------------------------------------
def _release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``), so an idle worker
    does not keep the peak of its largest clip. Done between jobs rather than by lowering
    glibc's mmap threshold: that maps every frame-sized buffer afresh and doubles the CPU time
    of frame synthesis in page faults."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os.killpg(0, signal.SIGKILL)  # this worker and its ffmpeg


def main() -> None:
    from .render import render_clip  # numpy and Pillow: in workers only, never in the server

    parent = int(sys.argv[1])
    if os.getppid() != parent:
        return
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        os.nice(WORKER_NICE)
    except OSError:
        pass
    jobs, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while (job := _receive(jobs)) is not None:
        req, out_path = job
        try:
            render_clip(req, out_path)
            answer: tuple = ("ok", "")
        except Exception as exc:  # reported to the caller, who fails the task
            answer = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        _release_free_memory()
        _send(answers, answer)


if __name__ == "__main__":
    main()
