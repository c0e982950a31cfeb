"""Test helpers: a fake clock, an in-process client, and a real uvicorn server on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from service.engine import Engine
from service.model import Task
from streams.bus import EventBus, EventFilter

FAILSAFE_S = 10.0
"""Longest any test waits for something that should happen at once: a failsafe, not a sleep."""


class FakeClock:
    """Seconds that only move when a test moves them."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def engine_of(app: FastAPI) -> Engine:
    engine: Engine = app.state.engine
    return engine


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (workers, timers) around the block."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_for(
    app: FastAPI, address: str = "203.0.113.7"
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client, for everything but streaming (the transport buffers bodies)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://tw") as c:
        yield c


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class LiveServer(str):
    """The base URL of a served app, which also knows the server behind it."""

    server: uvicorn.Server

    @property
    def requests_in_flight(self) -> int:
        return len(self.server.server_state.tasks)


@asynccontextmanager
async def serve(app: FastAPI, **config: Any) -> AsyncIterator[LiveServer]:
    """Serve ``app`` with uvicorn on a free port, in this event loop; yields the base URL."""
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none", **config)
    )
    serving = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, timeout=FAILSAFE_S, return_when="FIRST_COMPLETED")
    if not server.ready.is_set():
        ready.cancel()
        raise RuntimeError("the test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    live = LiveServer(f"http://127.0.0.1:{port}")
    live.server = server
    try:
        yield live
    finally:
        server.should_exit = True
        await serving


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the event loop until ``condition`` holds (for state with no event to wait on)."""
    async with asyncio.timeout(FAILSAFE_S):
        while not condition():  # noqa: ASYNC110 - the state watched has no event of its own
            await asyncio.sleep(0)


async def next_event(bus: EventBus, name: str, event_filter: EventFilter | None = None) -> Any:
    """Wait for the next event called ``name``; returns it."""
    event_filter = event_filter or EventFilter()
    async with asyncio.timeout(FAILSAFE_S), bus.subscribe(event_filter) as subscriber:
        async for event in subscriber:
            if event.name == name:
                return event
    raise AssertionError(f"the bus closed before {name}")


async def finished(engine: Engine, task_id: str) -> Task:
    """Wait until the task has finished; returns it."""
    async with asyncio.timeout(FAILSAFE_S):
        async with engine.bus.subscribe(EventFilter(task_id=task_id)) as subscriber:
            task = engine.store.get(task_id)
            if task.status.is_finished:
                return task
            async for event in subscriber:
                if event.status.is_finished:
                    return engine.store.get(task_id)
    raise AssertionError("the bus closed before the task finished")


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Parse a text/event-stream body: one dict per event (``id``, ``event``, ``data``,
    ``retry``), and ``{"comment": ...}`` for each comment line."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    if fields:
        yield fields


async def take_events(events: AsyncIterator[dict[str, str]], n: int) -> list[dict[str, str]]:
    """The next ``n`` task events (heartbeats, ``retry`` and bare ``id`` lines are skipped)."""
    taken: list[dict[str, str]] = []
    async with asyncio.timeout(FAILSAFE_S):
        async for event in events:
            if event.get("event", "").startswith("task."):
                taken.append(event)
                if len(taken) == n:
                    break
    return taken
