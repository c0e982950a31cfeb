"""What every benchmark needs: servers as separate processes, a lean HTTP client, RSS, stats."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

QUIET = {"TASKWIRE_LOG_LEVEL": "warning"}
"""Benchmarks measure serving, not writing a log line per request to a terminal."""

_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = set(_CPUS[:1])
"""The server under test runs on a CPU of its own (uvicorn serves on one thread anyway) and
every load generator (wrk, the asyncio clients, py-spy) on the others, so that the client's
work never steals the server's time; every contender is measured the same way."""
CLIENT_CPUS = set(_CPUS[1:]) or SERVER_CPUS


def pin_to_client_cpus() -> None:
    """Move this process, and so every process it starts later, off the server's CPU."""
    os.sched_setaffinity(0, CLIENT_CPUS)


@dataclass(frozen=True)
class Server:
    url: str
    host: str
    port: int
    pid: int

    def rss_kib(self) -> int:
        return rss_kib(self.pid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(app: str = "asgi:app", ready: str = "/healthz", **env: str) -> Iterator[Server]:
    """Run ``uvicorn <app>`` (uvloop and httptools, no access log) until the block ends."""
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **QUIET, **env},
        preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + ready, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.05)
        yield Server(url, "127.0.0.1", port, process.pid)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no RSS for {pid}")


def cpu_s(pid: int) -> float:
    """CPU time a process has used so far, all its threads, in seconds (the scheduler's ns)."""
    total = 0
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread just ended
            total += int((thread / "schedstat").read_text().split()[0])
    return total / 1e9


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timestamp(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


async def request(
    host: str, port: int, method: str, path: str, body: bytes = b"", headers: str = ""
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on its own connection; returns (status, body)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        status_line = await reader.readline()
        await reader.readuntil(b"\r\n\r\n")
        return int(status_line.split()[1]), await reader.read()
    finally:
        writer.close()


async def chunks(reader: asyncio.StreamReader) -> asyncio.StreamReader:
    """Skip the response head of a chunked stream; the reader is then at the first chunk."""
    await reader.readuntil(b"\r\n\r\n")
    return reader


async def next_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int(await reader.readuntil(b"\r\n"), 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


def machine() -> dict[str, str]:
    versions = {
        name: importlib.metadata.version(name)
        for name in (
            "fastapi",
            "starlette",
            "uvicorn",
            "uvloop",
            "httptools",
            "sse-starlette",
            "pydantic",
            "orjson",
            "redis",
        )
    }
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        **versions,
        "redis-server": _redis_server_version(),
    }


def _redis_server_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "not installed"
    output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v=(\S+)", output)
    return match.group(1) if match else output.strip()
