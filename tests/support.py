"""Test helpers: a fake clock, in-process clients, a real uvicorn server on a free port, and
ways to wait for what a test expects: bus events and subscriptions, never sleeps or spins."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from service.backend import Backend
from service.engine import Engine
from service.events import Event, EventBus, EventFilter, Subscriber
from service.model import Task

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


def backend_of(app: FastAPI) -> Backend:
    backend: Backend = app.state.backend
    return backend


def bus_of(app: FastAPI) -> EventBus:
    return backend_of(app).bus


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


class Subscriptions:
    """Counts the subscriptions a bus opens, so a test can wait until a stream or a
    long-poll is listening before it makes the change that should reach it.

        subscriptions = Subscriptions(bus)
        waiter = asyncio.create_task(long_poll())
        await subscriptions.opened(1)
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.count = 0
        self.closed = 0
        self._changed = asyncio.Condition()
        subscribe = bus.subscribe

        @asynccontextmanager
        async def counted(*args: Any, **kwargs: Any) -> AsyncIterator[Subscriber]:
            async with subscribe(*args, **kwargs) as subscriber:
                await self._note("count")
                try:
                    yield subscriber
                finally:
                    await self._note("closed")

        bus.subscribe = counted  # type: ignore[method-assign]

    async def opened(self, n: int) -> None:
        """Wait until ``n`` subscriptions have opened in all."""
        await self._wait(lambda: self.count >= n)

    async def of_kind(self, kind: str, n: int) -> None:
        """Wait until ``n`` subscriptions of ``kind`` (``watch``, ``sse``...) are open."""
        await self._wait(lambda: self._bus.open_by_kind[kind] >= n)

    async def open_now(self, n: int) -> None:
        """Wait until exactly ``n`` subscriptions are open."""
        await self._wait(lambda: self.count - self.closed == n)

    async def _note(self, field: str) -> None:
        async with self._changed:
            setattr(self, field, getattr(self, field) + 1)
            self._changed.notify_all()

    async def _wait(self, condition: Any) -> None:
        async with asyncio.timeout(FAILSAFE_S), self._changed:
            await self._changed.wait_for(condition)


def expect_event(
    bus: EventBus, name: str, event_filter: EventFilter | None = None
) -> AbstractAsyncContextManager[asyncio.Future[Event]]:
    """Subscribe now, for the next event called ``name``: the future resolves to it.

    async with expect_event(bus, "task.processing") as processing:
        await engine.submit(...)
    event = await processing  (or inside the block)
    """
    return _expect(bus, lambda event: event.name == name, event_filter or EventFilter())


@asynccontextmanager
async def _expect(
    bus: EventBus, wanted: Any, event_filter: EventFilter
) -> AsyncIterator[asyncio.Future[Event]]:
    found: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

    async def listen(subscriber: Subscriber) -> None:
        async for event in subscriber:
            if wanted(event):
                found.set_result(event)
                return
        found.set_exception(AssertionError("the bus closed first"))

    async with bus.subscribe(event_filter) as subscriber:
        listener = asyncio.create_task(listen(subscriber))
        try:
            yield found
            async with asyncio.timeout(FAILSAFE_S):
                await asyncio.shield(found)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


class Recorder:
    """Every event the bus delivers while recording, in order (see ``recording``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    def names(self, task_id: str | None = None) -> list[str]:
        return [e.name for e in self.events if task_id is None or e.task_id == task_id]

    def count(self, name: str) -> int:
        return sum(1 for event in self.events if event.name == name)

    async def until(self, condition: Callable[[list[Event]], bool]) -> list[Event]:
        """Wait until ``condition(events)`` holds; returns the events so far."""
        async with asyncio.timeout(FAILSAFE_S), self._changed:
            await self._changed.wait_for(lambda: condition(self.events))
        return self.events

    async def until_count(self, name: str, n: int) -> list[Event]:
        """Wait until ``n`` events called ``name`` have been recorded."""
        return await self.until(lambda _: self.count(name) >= n)

    async def _add(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()


@asynccontextmanager
async def recording(
    bus: EventBus, event_filter: EventFilter | None = None
) -> AsyncIterator[Recorder]:
    """Record every matching event delivered from now until the block ends."""
    recorder = Recorder()

    async def listen(subscriber: Subscriber) -> None:
        async for event in subscriber:
            await recorder._add(event)

    async with bus.subscribe(event_filter or EventFilter()) as subscriber:
        listener = asyncio.create_task(listen(subscriber))
        try:
            yield recorder
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


async def next_event(bus: EventBus, name: str, event_filter: EventFilter | None = None) -> Event:
    """Wait for the next event called ``name``; returns it."""
    event_filter = event_filter or EventFilter()
    async with asyncio.timeout(FAILSAFE_S), bus.subscribe(event_filter) as subscriber:
        async for event in subscriber:
            if event.name == name:
                return event
    raise AssertionError(f"the bus closed before {name}")


async def finished(backend: Backend, task_id: str) -> Task:
    """Wait until the task has finished; returns it."""
    async with asyncio.timeout(FAILSAFE_S):
        async with backend.bus.subscribe(EventFilter(task_id=task_id)) as subscriber:
            task = await backend.get(task_id)
            if task.status.is_finished:
                return task
            async for event in subscriber:
                if event.status.is_finished:
                    return await backend.get(task_id)
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
