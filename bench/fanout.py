"""SSE fan-out: N subscribers on /events while tasks run; every event must reach every one.

Lag is the time from the event (the task's own created_at/started_at/finished_at, stamped by
the server as it publishes) to its arrival at a subscriber, on this machine's one clock.
Progress events carry no timestamp: they are counted for delivery but not for lag.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.common import Server, chunks, next_chunk, percentile, pin_to_client_cpus, request, serve

STAMPS = {"task.queued": "created_at", "task.processing": "started_at"}


class Subscriber:
    def __init__(self) -> None:
        self.received: list[tuple[int, float]] = []  # (event id, arrival time)
        self.data: dict[int, tuple[str, bytes]] = {}  # only for the reference subscriber

    async def run(self, server: Server, ready: asyncio.Event, keep_data: bool = False) -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await chunks(reader)
        ready.set()
        try:
            while True:
                chunk = await next_chunk(reader)
                now = time.time()
                for frame in chunk.split(b"\n\n"):
                    # Task events only: not the bare "id:" the stream opens with, nor pings.
                    if frame.startswith(b"id: ") and b"\nevent: task." in frame:
                        first_newline = frame.index(b"\n")
                        event_id = int(frame[4:first_newline])
                        self.received.append((event_id, now))
                        if keep_data:
                            lines = frame.split(b"\n")
                            self.data[event_id] = (lines[1][7:].decode(), lines[2][6:])
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()


def event_time(name: str, data: bytes) -> float | None:
    from bench.common import timestamp

    task: dict[str, Any] = orjson.loads(data)
    field = STAMPS.get(
        name, "finished_at" if name in {"task.completed", "task.failed", "task.cancelled"} else ""
    )
    return timestamp(task[field]) if field and task.get(field) else None


async def measure(
    subscribers: int = 1000, tasks: int = 50, submit_every_s: float = 0.05
) -> dict[str, Any]:
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_WORK_SCALE": "0.02",
        "TASKWIRE_MAX_QUEUE": "10000",
        "TASKWIRE_MAX_STREAMS_PER_CLIENT": "100000",  # every subscriber is 127.0.0.1
    }
    with serve(**settings) as server:
        idle_kib = server.rss_kib()
        reference = Subscriber()
        clients = [Subscriber() for _ in range(subscribers)]
        readies = [asyncio.Event() for _ in range(subscribers + 1)]
        running = [asyncio.create_task(reference.run(server, readies[0], keep_data=True))]
        running += [
            asyncio.create_task(c.run(server, r)) for c, r in zip(clients, readies[1:], strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        await _until_subscribed(server, subscribers + 1)
        open_kib = server.rss_kib()

        started = time.monotonic()
        body = orjson.dumps(
            {"task_type": "compute_sum", "parameters": {"numbers": list(range(100))}}
        )
        for _ in range(tasks):
            status, _ = await request(server.host, server.port, "POST", "/tasks", body)
            assert status == 202, status
            await asyncio.sleep(submit_every_s)
        await _until_done(reference, tasks)
        # Everyone has the last event once the reference has it and a moment has passed.
        expected = [event_id for event_id, _ in reference.received]
        deadline = time.monotonic() + 30
        # Other processes' progress has no event here to wait on.
        while any(len(c.received) < len(expected) for c in clients) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    times = {
        event_id: stamp
        for event_id, (name, data) in reference.data.items()
        if (stamp := event_time(name, data)) is not None
    }
    lags = [
        (arrived - times[event_id]) * 1000
        for client in clients
        for event_id, arrived in client.received
        if event_id in times
    ]
    complete = sum(1 for c in clients if [e for e, _ in c.received] == expected)
    return {
        "subscribers": subscribers,
        "tasks": tasks,
        "events": len(expected),
        "deliveries": sum(len(c.received) for c in clients),
        "complete_subscribers": complete,
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags),
        "rss_per_stream_kib": (open_kib - idle_kib) / (subscribers + 1),
        "seconds": elapsed,
    }


async def _until_subscribed(server: Server, count: int) -> None:
    while True:
        _, body = await request(server.host, server.port, "GET", "/healthz")
        if orjson.loads(body)["subscribers"] >= count:
            return
        await asyncio.sleep(0.05)


async def _until_done(reference: Subscriber, tasks: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = sum(1 for name, _ in reference.data.values() if name == "task.completed")
        if finished >= tasks:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("tasks did not finish")


if __name__ == "__main__":
    pin_to_client_cpus()
    import uvloop

    print(uvloop.run(measure()))
