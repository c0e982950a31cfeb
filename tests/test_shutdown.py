"""SIGTERM with streams and long-polls open: everything ends and the process exits promptly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.processes import spawn
from tests.support import sse

SLOW = {"task_type": "unstable_task", "parameters": {"failure_rate": 0}}
EXIT_WITHIN_S = 2.0


async def read_sse(client: httpx.AsyncClient) -> list[str]:
    async with client.stream("GET", "/events") as response:
        return [e["event"] async for e in sse(response) if "event" in e]


async def read_watch(client: httpx.AsyncClient) -> int:
    async with client.stream("GET", "/tasks", params={"watch": "true"}) as response:
        return len([line async for line in response.aiter_lines()])


async def long_poll(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/tasks/{task_id}", params={"wait": "true", "timeout": 10})
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


async def open_count(client: httpx.AsyncClient) -> int:
    count: int = (await client.get("/healthz")).json()["subscribers"]
    return count


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
async def test_sigterm_ends_100_streams_and_long_polls_and_exits_promptly(server: str) -> None:
    settings = {
        "TASKWIRE_WORK_SCALE": "1",
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_LOG_LEVEL": "warning",
        "TASKWIRE_MAX_STREAMS_PER_CLIENT": "100",  # all from this one address
    }
    with spawn(server, **settings) as (url, process):
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
            running = [(await client.post("/tasks", json=SLOW)).json()["task_id"] for _ in range(5)]
            queued = (await client.post("/tasks", json=SLOW)).json()["task_id"]
            streams = [asyncio.create_task(read_sse(client)) for _ in range(40)]
            watches = [asyncio.create_task(read_watch(client)) for _ in range(30)]
            polls = [asyncio.create_task(long_poll(client, queued)) for _ in range(30)]
            async with asyncio.timeout(10):
                # Another process: there is no event to await, so ask until all 100 are open.
                while await open_count(client) < 100:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            async with asyncio.timeout(EXIT_WITHIN_S):
                seen = await asyncio.gather(*streams)
                await asyncio.gather(*watches)
                answers = await asyncio.gather(*polls)
            ended_s = time.monotonic() - signalled
            exit_code = await asyncio.to_thread(_wait, process)
            exited_s = time.monotonic() - signalled

    assert ended_s < 1.0, f"streams took {ended_s:.2f} s to end"
    assert exited_s < EXIT_WITHIN_S, f"the process took {exited_s:.2f} s to exit"
    assert exit_code in (0, -signal.SIGTERM)
    assert all(a["status"] == "queued" for a in answers)  # answered, with the task as it was
    for events in seen:  # each running task ended cancelled, and every stream heard of it
        assert events.count("task.cancelled") == len(running)


def _wait(process: subprocess.Popen[bytes]) -> int:
    return process.wait(timeout=EXIT_WITHIN_S)
