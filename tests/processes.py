"""Taskwire as a separate process, for what only a real process shows: signals, exit codes."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), "asgi:app", "--port", str(port), "--no-access-log"]
    return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"]


@contextmanager
def spawn(server: str, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start Taskwire under ``uvicorn`` or ``gunicorn`` on a free port; yields (url, process)."""
    port = free_port()
    env = {**os.environ, **settings, "PORT": str(port), "BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        command(server, port), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield url, process
    finally:
        stop(process)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, as an operator would, then SIGKILL if it has not exited within ``timeout_s``.
    (A SIGKILL first would leave gunicorn's workers behind until they notice.)"""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (gunicorn's workers)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def exited_within(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` (not necessarily a child of this process) exits within ``timeout_s``:
    waits on its pidfd, which becomes readable when it does."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"the server exited:\n{stderr}")
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # a separate process offers no event to wait on
    raise AssertionError("the server did not start")
