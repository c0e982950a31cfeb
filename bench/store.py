"""The store at 100 000 tasks: memory per finished task, and listing all of them as a stream.

wrk submits the tasks and they run to completion (instant work);
memory is the server's RSS after, minus before. A listing samples the RSS while it streams,
to see what the listing itself holds.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import Server, pin_to_client_cpus, rss_kib, serve


def submit_many(server: Server, count: int) -> None:
    """wrk POSTs in short bursts until the store holds ``count`` tasks (its capacity)."""
    command = ["wrk", "-t1", "-c32", "-d2s", "-s", str(Path(__file__).parent / "post.lua")]
    while httpx.get(server.url + "/healthz").json()["tasks"] < count:
        subprocess.run([*command, server.url + "/tasks"], capture_output=True, check=True)


async def health(server: Server) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    body = (await reader.read()).split(b"\r\n\r\n", 1)[1]
    writer.close()
    answer: dict[str, Any] = orjson.loads(body)
    return answer


async def listing(server: Server, accept: str, count: int) -> dict[str, float]:
    """Time to first byte, total time, and the peak extra RSS while the list streams."""
    before = server.rss_kib()
    peak = before
    streaming = True

    def sample() -> None:
        nonlocal peak
        while streaming:
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.perf_counter()
    writer.write(
        f"GET /tasks?limit={count} HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    size_line = await reader.readuntil(b"\r\n")
    first_byte = time.perf_counter() - started
    received = 0
    while (size := int(size_line, 16)) > 0:
        received += len(await reader.readexactly(size + 2)) - 2
        size_line = await reader.readuntil(b"\r\n")
    total = time.perf_counter() - started
    streaming = False
    sampler.join()
    writer.close()
    return {
        "first_byte_ms": first_byte * 1000,
        "total_ms": total * 1000,
        "mib": received / 2**20,
        "extra_rss_mib": (peak - before) / 1024,
    }


async def measure(count: int = 100_000) -> dict[str, Any]:
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_WORK_SCALE": "0",
        "TASKWIRE_MAX_QUEUE": str(count),
        "TASKWIRE_MAX_TASKS": str(count),
    }
    with serve(**settings) as server:
        idle_kib = server.rss_kib()
        started = time.perf_counter()
        submit_many(server, count)
        while (await health(server))["completed"] < count:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
        populated_s = time.perf_counter() - started
        full_kib = server.rss_kib()
        as_json = await listing(server, "application/json", count)
        as_ndjson = await listing(server, "application/x-ndjson", count)
    return {
        "tasks": count,
        "rss_per_task_kib": (full_kib - idle_kib) / count,
        "populate_s": populated_s,
        "json": as_json,
        "ndjson": as_ndjson,
    }


if __name__ == "__main__":
    pin_to_client_cpus()
    import uvloop

    print(uvloop.run(measure()))
