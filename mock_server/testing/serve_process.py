"""``kf2v-mock serve`` as a child process, for harnesses that need a real, separate server: one that
can be killed with ``kill -9``, restarted on the same data dir, or measured on its own::

    with ServeProcess("--timing", "realistic") as server:
        server.urls["cn-beijing"]         # http://127.0.0.1:<port>/api/v1
        server.root_url("cn-beijing")     # http://127.0.0.1:<port> (/_mock/ lives there)
        server.kill()                     # SIGKILL, like a crash
    ServeProcess("--proxy-port", "0").start().proxy_url   # the intercepting proxy; .ca_file
    ServeProcess(data_dir=path).start()   # with a data dir: picks up where a killed one stopped

Both regions listen on free loopback ports unless the flags say otherwise; ``start()`` returns once
the ready file names them. Everything the process prints goes to ``log_path`` (``logs()`` reads it),
so a chatty server never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

START_TIMEOUT = 60.0  # seconds for the process to write its ready file
STOP_TIMEOUT = 30.0  # seconds for a graceful stop before it is killed


class ServeError(RuntimeError):
    """The process exited, or did not become ready in time; the message ends with its log."""


class ServeProcess:
    def __init__(self, *flags: str, data_dir: str | Path | None = None, quiet: bool = True,
                 free_ports: bool = True, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, workdir: str | Path | None = None,
                 start_timeout: float = START_TIMEOUT):
        """``flags`` go to ``kf2v-mock serve`` after the ones chosen here (later flags win).
        ``data_dir``: keep state there, across restarts (default: none, like ``serve``: nothing is
        kept). ``free_ports``: port 0 for both regions. ``workdir``: where the ready file and the
        log go (default: a temporary directory, removed by ``cleanup()``)."""
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kf2v-serve-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.ready_file = self.workdir / "ready.json"
        self.log_path = self.workdir / "serve.log"
        ports = ["--beijing-port", "0", "--singapore-port", "0"] if free_ports else []
        self.command = [sys.executable, "-m", "mock_server", "serve", *ports,
                        "--ready-file", str(self.ready_file),
                        *(["--data-dir", str(self.data_dir)] if self.data_dir else []),
                        *(["--quiet"] if quiet else []), *flags]
        # Loopback never goes through the user's proxy.
        self.env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost,::1", **(env or {})}
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}
        # With --proxy-port: the intercepting proxy's URL and the CA file clients must trust.
        self.proxy_url: str | None = None
        self.ca_file: str | None = None

    # --- lifetime --------------------------------------------------------------------------------
    def start(self) -> "ServeProcess":
        self.ready_file.unlink(missing_ok=True)  # never read an earlier run's ports
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + self.start_timeout
        while True:
            ready = self._read_ready_file()
            if ready:
                proxy = ready.pop("proxy", None) or {}
                self.proxy_url, self.ca_file = proxy.get("url"), proxy.get("ca_file")
                self.urls = ready
                return self
            if self.process.poll() is not None:
                raise ServeError(f"kf2v-mock serve exited with {self.process.returncode}:\n"
                                 + self.logs()[-4000:])
            if time.monotonic() > deadline:
                self.kill()
                raise ServeError(f"kf2v-mock serve was not ready in {self.start_timeout:.0f} s:\n"
                                 + self.logs()[-4000:])
            time.sleep(0.02)  # waiting for another process to start, not for emulator state

    def _read_ready_file(self) -> dict | None:
        try:
            return json.loads(self.ready_file.read_text())
        except (FileNotFoundError, ValueError):  # not written yet (it is renamed into place)
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit status, None if never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed or cleaned up) and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def cleanup(self) -> None:
        """Remove the temporary work dir, once stopped (a ``data_dir`` given is left alone)."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
        self.cleanup()

    # --- reading ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the process is not started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def base_url(self, region: str = "cn-beijing") -> str:
        """``http://host:port/api/v1`` of ``region``'s listener (what the SDK is given)."""
        return self.urls[region]

    def root_url(self, region: str = "cn-beijing") -> str:
        """``http://host:port`` of ``region``'s listener (``/_mock/...`` lives there)."""
        return self.urls[region].removesuffix("/api/v1")

    def logs(self) -> str:
        """Everything the process has printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
