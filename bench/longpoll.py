"""Long-poll wake-up: N waiters on one queued task, woken by its status change (a cancel).

Lag is from the task's ``finished_at`` (stamped as the cancel publishes its event) to the
moment each waiter's complete answer reaches the client's socket. Waiters are asyncio
protocols on keep-alive connections that note the time in ``data_received``, so the client's
own scheduling does not count as server lag.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import orjson

from bench.common import Server, percentile, pin_to_client_cpus, request, serve, timestamp


class Waiter(asyncio.Protocol):
    def __init__(self, path: str) -> None:
        self.path = path
        self.buffer = b""
        self.arrived: float | None = None
        self.status: str | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, separator, body = self.buffer.partition(b"\r\n\r\n")
        if not separator:
            return
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if len(body) >= length:
            self.arrived = time.time()
            self.status = orjson.loads(body[:length])["status"]
            self.transport.close()
            self.done.set_result(None)


SETTINGS = {
    "TASKWIRE_RATE_LIMIT": "0",
    "TASKWIRE_CONCURRENCY": "1",
    "TASKWIRE_WORK_SCALE": "1",
    "TASKWIRE_LONG_POLL_MAX": "120",
}
FLOOR = "bench.baselines.raw_asgi:app"
"""The same long-poll in raw ASGI: one event per task, no framework, nothing else."""


async def measure(waiters: int = 1000, app: str = "asgi:app") -> dict[str, Any]:
    body = orjson.dumps({"task_type": "unstable_task", "parameters": {"failure_rate": 0}})
    loop = asyncio.get_running_loop()
    with serve(app, **SETTINGS) as server:
        await request(server.host, server.port, "POST", "/tasks", body)  # holds the only worker
        _, created = await request(server.host, server.port, "POST", "/tasks", body)
        task_id = orjson.loads(created)["task_id"]
        idle_kib = server.rss_kib()
        path = f"/tasks/{task_id}?wait=true&timeout=120"
        opened = [
            await loop.create_connection(lambda: Waiter(path), server.host, server.port)
            for _ in range(waiters)
        ]
        protocols = [protocol for _, protocol in opened]
        await _until_subscribed(server, waiters)
        open_kib = server.rss_kib()
        _, cancelled = await request(server.host, server.port, "DELETE", f"/tasks/{task_id}")
        woken_at = timestamp(orjson.loads(cancelled)["finished_at"])
        await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), timeout=60)

    lags = [(p.arrived - woken_at) * 1000 for p in protocols if p.arrived is not None]
    return {
        "waiters": waiters,
        "woken": sum(p.status == "cancelled" for p in protocols),
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags),
        "rss_per_waiter_kib": (open_kib - idle_kib) / waiters,
    }


async def _until_subscribed(server: Server, count: int) -> None:
    while True:  # another process: nothing here to wait on but its own count
        _, health = await request(server.host, server.port, "GET", "/healthz")
        if orjson.loads(health)["subscribers"] >= count:
            return
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    pin_to_client_cpus()
    import uvloop

    for _ in range(3):
        print(uvloop.run(measure()))
