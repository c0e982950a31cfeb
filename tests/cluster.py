"""Several Taskwire processes on one Redis, for what only real processes show."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.processes import BIN, ROOT, free_port, stop

STARTUP_S = 20.0


class Process:
    """One Taskwire process: an API server (``url``) or a worker (``url`` is None)."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path, url: str | None) -> None:
        self.popen = popen
        self.log = log
        self.url = url

    def kill(self) -> None:
        """SIGKILL: what a crash or a lost host does."""
        self.popen.kill()
        self.popen.wait()

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    """Starts Taskwire processes sharing one Redis and one key prefix; stops them all."""

    def __init__(self, redis_url: str, prefix: str, logs: Path, **settings: str) -> None:
        self.settings = {
            "TASKWIRE_BACKEND": redis_url,
            "TASKWIRE_REDIS_PREFIX": prefix,
            "TASKWIRE_RATE_LIMIT": "0",
            "TASKWIRE_WORK_SCALE": "0",
            "TASKWIRE_LOG_LEVEL": "warning",
            **settings,
        }
        self.logs = logs
        self.processes: list[Process] = []

    def api(self, server: str = "uvicorn", **settings: str) -> Process:
        """An API process (which also runs tasks unless TASKWIRE_WORKERS=false)."""
        port = free_port()
        if server == "uvicorn":
            argv = [str(BIN / "uvicorn"), "asgi:app", "--port", str(port), "--no-access-log"]
        else:
            argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"]
        env = {"PORT": str(port), "BIND": f"127.0.0.1:{port}", **settings}
        process = self._start(argv, env, url=f"http://127.0.0.1:{port}")
        self._wait_until_serving(process)
        return process

    def worker(self, **settings: str) -> Process:
        """A worker process: ``taskwire worker``, no HTTP server."""
        return self._start([str(BIN / "taskwire"), "worker"], settings, url=None)

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process.popen)

    def _start(self, argv: list[str], settings: dict[str, str], url: str | None) -> Process:
        log = self.logs / f"process-{len(self.processes)}.log"
        env = {**os.environ, **self.settings, **settings}
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
        process = Process(popen, log, url)
        self.processes.append(process)
        return process

    def _wait_until_serving(self, process: Process) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise AssertionError(f"the server exited:\n{process.output()}")
            try:
                httpx.get(f"{process.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)  # a separate process offers no event to wait on
        raise AssertionError("the server did not start")


@contextmanager
def cluster(redis_url: str, prefix: str, logs: Path, **settings: str) -> Iterator[Cluster]:
    running = Cluster(redis_url, prefix, logs, **settings)
    try:
        yield running
    finally:
        running.stop_all()
