"""Clients that stop reading, forged proxy headers, too many connections: real processes.

A client socket with a tiny receive buffer that never reads is the oldest trick against a
streaming server; these tests play it against Taskwire as uvicorn and gunicorn run it
(`make run`'s flags, `gunicorn.conf.py`), and measure what only a separate process shows:
its memory, and how long it takes to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.processes import BIN, ROOT, free_port, stop
from tests.support import FAILSAFE_S

pytestmark = pytest.mark.timeout(120)

STARTUP_S = 20.0
EXIT_WITHIN_S = 2.0
EVENT_BYTES = 10_000
"""The size of each event's data in the replay test: the task carries a 10 000-letter string."""


def make_run_command(port: int, **variables: str) -> list[str]:
    """The uvicorn command `make run` starts, read from the Makefile itself (``make -n``)."""
    assignments = [f"{name}={value}" for name, value in {**variables, "PORT": str(port)}.items()]
    dry_run = subprocess.run(
        ["make", "-n", "-s", "run", "HOST=127.0.0.1", *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    recipe = dry_run.replace("\\\n", " ")
    [line] = [line for line in recipe.splitlines() if "uvicorn asgi:app" in line]
    argv = shlex.split(line)
    return [str(BIN / "uvicorn"), *argv[1:]]


@contextlib.contextmanager
def server(kind: str, log: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Taskwire under ``uvicorn`` (as `make run`) or ``gunicorn`` (its config file)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TASKWIRE_")},
        "TASKWIRE_LOG_LEVEL": "warning",
        "PORT": str(port),
        "BIND": f"127.0.0.1:{port}",
        **settings,
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    make_variables = {k: v for k, v in settings.items() if k == "TASKWIRE_MAX_CONNECTIONS"}
    argv = (
        make_run_command(port, **make_variables)
        if kind == "uvicorn"
        else [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.05)  # another process: there is no event to await
        yield url, process
    finally:
        stop(process)


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children (gunicorn's workers), in MiB."""
    pids = [pid]
    with contextlib.suppress(FileNotFoundError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    total_kib = 0
    for each in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def non_reader(url: str, request: bytes, source: str = "127.0.0.1") -> socket.socket:
    """A client (at ``source``, any loopback address) that sends ``request`` and never reads a
    byte of the answer."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    sock.sendall(request)
    return sock


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: taskwire", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def fill(url: str, tasks: int, letters: int) -> None:
    """Submit ``tasks`` tasks whose events each carry ``letters`` letters, and let them run."""
    body = {
        "task_type": "find_longest_consecutive_letters",
        "parameters": {"string": "ab" * (letters // 2)},
    }
    # A connection idle for a second is not used again: the server closes idle ones after 5 s,
    # and a request sent just as it does so would be lost with it (a ReadError).
    limits = httpx.Limits(max_connections=32, keepalive_expiry=1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one() -> None:
            async with semaphore:
                submitted = await client.post("/tasks", json=body)
                assert submitted.status_code == 202
                task = submitted.json()
                while task["status"] != "completed":  # each long-poll waits for a change
                    url = f"/tasks/{task['task_id']}"
                    task = (await client.get(url, params={"wait": "true"})).json()

        # A failsafe, not a measure: 3200 tasks took 25 s alone and over 60 s under coverage
        # on a slow day of a shared 2-core machine.
        async with asyncio.timeout(240):
            await asyncio.gather(*(one() for _ in range(tasks)))


def first_event_id(url: str) -> int:
    """The position a new stream opens at: the id of the latest event."""
    with httpx.stream("GET", f"{url}/events", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("id: "):
                return int(line.removeprefix("id: "))
    raise AssertionError("no opening id")


@pytest.mark.timeout(360)  # room for the fill's own failsafe (240 s) to speak first
def test_ten_clients_that_do_not_read_a_full_replay_add_little_memory(tmp_path: Path) -> None:
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_WORK_SCALE": "0",
        "TASKWIRE_MAX_QUEUE": "10000",
        "TASKWIRE_EVENT_BUFFER_BYTES": str(200 * 2**20),  # room for the whole history
        "TASKWIRE_SEND_TIMEOUT": "60",  # they stay connected while measured
    }
    with server("uvicorn", tmp_path / "log", **settings) as (url, process):
        start = first_event_id(url)
        # queued, processing, completed: ~9 600 events of ~10 KB (instant work reports no progress)
        asyncio.run(fill(url, tasks=3200, letters=EVENT_BYTES))
        last = first_event_id(url)
        assert last - start > 9000
        before = rss_mib(process.pid)
        clients = [non_reader(url, get("/events", f"Last-Event-ID: {start}")) for _ in range(10)]
        try:
            most = before
            until = time.monotonic() + 2.0
            while time.monotonic() < until:  # sampled: the peak while the replays are written
                most = max(most, rss_mib(process.pid))
                time.sleep(0.02)  # sampling another process's memory: no event to await
            health = httpx.get(f"{url}/healthz").json()
            assert health["subscribers"] >= 10  # all ten still connected, replaying
        finally:
            for sock in clients:
                sock.close()
    assert most - before < 100, f"RSS grew by {most - before:.0f} MiB"


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
@pytest.mark.parametrize("stream", ["events", "watch", "list"])
def test_sigterm_exits_promptly_while_a_client_does_not_read(
    kind: str, stream: str, tmp_path: Path
) -> None:
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_WORK_SCALE": "0",
        "TASKWIRE_MAX_QUEUE": "1000",
    }
    with server(kind, tmp_path / "log", **settings) as (url, process):
        start = first_event_id(url)
        asyncio.run(fill(url, tasks=300, letters=20_000))  # megabytes to send
        request = {
            "events": get("/events", f"Last-Event-ID: {start}"),
            "watch": get("/tasks?watch=true"),
            "list": get("/tasks", "Accept: application/x-ndjson"),
        }[stream]
        stuck = non_reader(url, request)
        try:
            httpx.get(f"{url}/healthz")  # the server has taken the request by now
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = process.wait(timeout=10)
            exited_s = time.monotonic() - signalled
        finally:
            stuck.close()
    assert exited_s < EXIT_WITHIN_S, f"{exited_s:.2f} s to exit"
    assert code in (0, -signal.SIGTERM)


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_forwarded_headers_are_not_believed_unless_a_proxy_is_named(
    kind: str, tmp_path: Path
) -> None:
    with server(kind, tmp_path / "log", TASKWIRE_RATE_LIMIT="2") as (url, _):
        answers = [
            httpx.get(f"{url}/tasks", headers={"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(3)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_connections_beyond_the_cap_are_refused(kind: str, tmp_path: Path) -> None:
    settings = {"TASKWIRE_MAX_CONNECTIONS": "3", "TASKWIRE_RATE_LIMIT": "0"}
    with server(kind, tmp_path / "log", **settings) as (url, _):
        # From three addresses: one address may hold half of the connections at most.
        held = [non_reader(url, get("/events"), f"127.0.0.{n}") for n in (2, 3, 4)]
        try:
            refused = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "over-the-cap"})
        finally:
            for sock in held:
                sock.close()
    assert refused.status_code == 503
    # As every error of the service: problem JSON, the request's id, and when to come back.
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["x-request-id"] == "over-the-cap"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["request_id"] == "over-the-cap"
    assert "TASKWIRE_MAX_CONNECTIONS" in refused.json()["detail"]


def test_one_address_holds_half_of_the_connections_at_most_and_the_others_are_served(
    tmp_path: Path,
) -> None:
    # A client that opens connections and sends nothing (each reopened as its head's deadline
    # closes it) must not take every connection from everyone else.
    settings = {"TASKWIRE_MAX_CONNECTIONS": "6", "TASKWIRE_RATE_LIMIT": "0"}
    with server("uvicorn", tmp_path / "log", **settings) as (url, _):
        held = [non_reader(url, b"", "127.0.0.2") for _ in range(3)]
        try:
            one_more = non_reader(url, get("/healthz"), "127.0.0.2")
            with contextlib.closing(one_more):
                one_more.settimeout(FAILSAFE_S)
                answer = b"".join(iter(lambda: one_more.recv(65536), b""))
            served = httpx.get(f"{url}/healthz")  # another address
        finally:
            for sock in held:
                sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"retry-after: 1" in head and b"application/problem+json" in head
    assert "3 connections" in orjson.loads(body)["detail"]
    assert served.status_code == 200
