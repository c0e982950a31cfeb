"""``GET /tasks?watch=true``: snapshot lines, ``synced``, then live events, as NDJSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from service.backend import TaskPage
from service.backends.memory.history import EventRing
from service.events import Event, EventBus, EventFilter
from service.model import Task
from streams.ndjson import watch
from tests.support import FAILSAFE_S, Subscriptions, backend_of, bus_of, finished, serve

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2]}}
FAIL = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}


@pytest.fixture
async def live(
    make_app: Callable[..., FastAPI],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = make_app()
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield app, client


async def submit(client: httpx.AsyncClient, body: dict[str, Any] = SUM) -> str:
    response = await client.post("/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def lines(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        yield orjson.loads(line)


async def until_synced(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    snapshot = []
    async with asyncio.timeout(FAILSAFE_S):
        async for line in stream:
            if line["type"] == "synced":
                return snapshot
            assert line["type"] == "snapshot"
            snapshot.append(line["task"])
    raise AssertionError("no synced line")


async def test_snapshot_then_synced_then_events(live: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = live
    done = [await submit(client) for _ in range(3)]
    for task_id in done:
        await finished(backend_of(app), task_id)
    async with client.stream("GET", "/tasks", params={"watch": "true"}) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["cache-control"] == "no-store"
        stream = lines(response)
        snapshot = await until_synced(stream)
        assert [t["task_id"] for t in snapshot] == done[::-1]
        assert {t["status"] for t in snapshot} == {"completed"}
        new = await submit(client)
        async with asyncio.timeout(FAILSAFE_S):
            events = []
            async for line in stream:
                events.append(line)
                if line["type"] == "task.completed":
                    break
    assert [e["type"] for e in events if e["type"] != "task.progress"] == [
        "task.queued",
        "task.processing",
        "task.completed",
    ]
    assert {e["task"]["task_id"] for e in events} == {new}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


async def test_no_change_is_lost_between_the_snapshot_and_the_events(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    submitted = [await submit(client) for _ in range(20)]

    async def more() -> None:
        for _ in range(20):
            submitted.append(await submit(client))

    busy = asyncio.create_task(more())  # tasks are created and finish while the watch starts
    state: dict[str, str] = {}
    async with client.stream("GET", "/tasks", params={"watch": "true"}) as response:
        stream = lines(response)
        for task in await until_synced(stream):
            state[task["task_id"]] = task["status"]
        await busy
        async with asyncio.timeout(FAILSAFE_S):
            async for line in stream:
                state[line["task"]["task_id"]] = line["task"]["status"]
                if len(state) == 40 and set(state.values()) == {"completed"}:
                    break
    assert set(state) == set(submitted)


async def test_filters_apply_to_the_snapshot_and_the_events(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    backend = backend_of(app)
    failed = await submit(client, FAIL)
    await finished(backend, await submit(client))
    await finished(backend, failed)
    params = {"watch": "true", "status": "failed", "task_type": "unstable_task"}
    async with client.stream("GET", "/tasks", params=params) as response:
        stream = lines(response)
        assert [t["task_id"] for t in await until_synced(stream)] == [failed]
        # A compute_sum, and an unstable task's queued and processing events, come first,
        # all of them before the failure the next line must be.
        await finished(backend, await submit(client))
        again = await submit(client, FAIL)
        async with asyncio.timeout(FAILSAFE_S):
            line = await anext(stream)
    assert (line["type"], line["task"]["task_id"]) == ("task.failed", again)


async def test_the_watch_ends_when_the_client_goes_away(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    bus = bus_of(app)
    subscriptions = Subscriptions(bus)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/tasks", params={"watch": "true"}) as response:
            await until_synced(lines(response))
            assert bus.subscriber_count == 1
        await subscriptions.open_now(0)  # the server let go of it: nobody is listening
        assert (subscriptions.count, bus.subscriber_count) == (1, 0)


async def test_events_a_later_page_already_shows_are_dropped_for_its_tasks_only() -> None:
    # Pages read at different points (a paged backend): the events up to the first page's
    # position are in the snapshot for every task; a later page shows later events of
    # its own tasks, and only those are dropped.
    bus = EventBus(EventRing(100, first_id=1), subscriber_queue=100, last_id=0)
    early, late, other = (make_task(name) for name in ("early", "late", "other"))

    async def select() -> AsyncIterator[TaskPage]:
        yield TaskPage([early], as_of=2)
        yield TaskPage([late], as_of=5)

    def event(event_id: int, task: Task) -> Event:
        return Event(event_id, "task.progress", task.task_id, task.task_type, task.status, b"{}")

    stream = watch(bus, EventFilter(), select, lambda task: True)
    assert b'"early"' in await anext(stream)
    assert b'"late"' in await anext(stream)
    assert await anext(stream) == b'{"type":"synced"}\n'
    for event_id, task in [(2, other), (3, early), (4, late), (5, late), (6, late), (6, other)]:
        bus.deliver(event(event_id, task))
    sent = b"".join([await anext(stream)])
    ids = [orjson.loads(line)["id"] for line in sent.splitlines()]
    assert ids == [3, 6, 6]  # not 2 (first page), nor 4 and 5 (late's page shows them)
    await stream.aclose()


def make_task(task_id: str) -> Task:
    return Task(
        task_id=task_id,
        task_type="compute_sum",
        parameters={},
        created_at=datetime(2027, 1, 15, tzinfo=UTC),
    )
