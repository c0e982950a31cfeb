"""Long-poll wake-up: N waiters on one queued task, woken by its status change (a cancel).

Lag is from the task's ``finished_at`` (stamped as the cancel publishes its event) to the
arrival of each waiter's answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.common import Server, percentile, request, serve, timestamp


async def wait(
    server: Server, path: str, arrived: list[float], statuses: list[str], ready: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    ready.set()
    await reader.readline()
    await reader.readuntil(b"\r\n\r\n")
    body = await reader.read()
    arrived.append(time.time())
    statuses.append(orjson.loads(body)["status"])
    writer.close()


async def measure(waiters: int = 1000) -> dict[str, Any]:
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_CONCURRENCY": "1",
        "TASKWIRE_WORK_SCALE": "1",
        "TASKWIRE_LONG_POLL_MAX": "120",
    }
    body = orjson.dumps({"task_type": "unstable_task", "parameters": {"failure_rate": 0}})
    with serve(**settings) as server:
        await request(server.host, server.port, "POST", "/tasks", body)  # holds the only worker
        _, created = await request(server.host, server.port, "POST", "/tasks", body)
        task_id = orjson.loads(created)["task_id"]
        idle_kib = server.rss_kib()
        arrived: list[float] = []
        statuses: list[str] = []
        readies = [asyncio.Event() for _ in range(waiters)]
        path = f"/tasks/{task_id}?wait=true&timeout=120"
        running = [asyncio.create_task(wait(server, path, arrived, statuses, r)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))
        while True:
            _, health = await request(server.host, server.port, "GET", "/healthz")
            if orjson.loads(health)["subscribers"] >= waiters:
                break
            await asyncio.sleep(0.05)
        open_kib = server.rss_kib()
        _, cancelled = await request(server.host, server.port, "DELETE", f"/tasks/{task_id}")
        woken_at = timestamp(orjson.loads(cancelled)["finished_at"])
        await asyncio.wait_for(asyncio.gather(*running), timeout=60)

    lags = [(t - woken_at) * 1000 for t in arrived]
    return {
        "waiters": waiters,
        "woken": statuses.count("cancelled"),
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags),
        "rss_per_waiter_kib": (open_kib - idle_kib) / waiters,
    }


if __name__ == "__main__":
    import uvloop

    print(uvloop.run(measure()))
