"""StreamLimitMiddleware: at most ``per_client`` streams open at once per client address.

On its own, with a stream that stays open until the test ends it; then as ``create_app``
wires it (``is_stream`` says which requests are streams; see also tests/api/test_app.py),
through a real server, since only a real server keeps a stream open for a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from middleware.problem import PROBLEM_JSON
from middleware.ratelimit import QUOTA_EXCEEDED
from middleware.streamlimit import StreamLimitMiddleware
from tests.middleware.harness import Exchange, http_scope
from tests.support import FAILSAFE_S, Subscriptions, bus_of, engine_of, serve


class Streams:
    """An app whose every answer is a stream that stays open until ``end`` is set."""

    def __init__(self) -> None:
        self.end = asyncio.Event()
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.open += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await self.end.wait()
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.open -= 1


def limited(app: Streams, per_client: int = 1) -> StreamLimitMiddleware:
    return StreamLimitMiddleware(
        app, per_client=per_client, is_stream=lambda scope: scope["path"] == "/stream"
    )


async def opened(middleware: StreamLimitMiddleware, address: str | None) -> asyncio.Task[Any]:
    """Open a stream from ``address``; returns once it has started."""
    exchange = Exchange()
    client = None if address is None else (address, 40000)
    running = asyncio.create_task(
        exchange.run(middleware, http_scope(path="/stream", client=client))
    )
    async with asyncio.timeout(FAILSAFE_S):
        await exchange.started.wait()
    assert exchange.status == 200
    return running


async def refused(middleware: StreamLimitMiddleware, address: str) -> Exchange:
    return await Exchange().run(middleware, http_scope(path="/stream", client=(address, 40000)))


async def test_addresses_are_counted_apart() -> None:
    streams = Streams()
    middleware = limited(streams, per_client=2)
    first = [await opened(middleware, "192.0.2.1") for _ in range(2)]
    other = await opened(middleware, "192.0.2.2")  # another address: its own two
    assert (await refused(middleware, "192.0.2.1")).status == 429
    assert streams.open == 3
    second = await opened(middleware, "192.0.2.2")
    assert (await refused(middleware, "192.0.2.2")).status == 429
    streams.end.set()
    await asyncio.gather(*first, other, second)


async def test_the_refusal_is_a_429_problem_that_says_why() -> None:
    streams = Streams()
    middleware = limited(streams, per_client=1)
    running = await opened(middleware, "192.0.2.1")
    answer = await refused(middleware, "192.0.2.1")
    assert (answer.status, answer.headers["content-type"]) == (429, PROBLEM_JSON)
    assert answer.headers["retry-after"] == "1"
    body = orjson.loads(answer.content)
    assert (body["status"], body["instance"]) == (429, "/stream")
    assert body["type"] == QUOTA_EXCEEDED  # as every 429 of the service
    assert "1 open streams" in body["detail"]
    assert streams.open == 1  # the refused one never reached the app
    streams.end.set()
    await running


async def test_a_stream_that_ends_frees_its_place_and_an_address_with_none_is_forgotten() -> None:
    streams = Streams()
    middleware = limited(streams, per_client=1)
    running = await opened(middleware, "192.0.2.1")
    assert middleware._open == {"192.0.2.1": 1}
    streams.end.set()
    await running
    assert middleware._open == {}  # no entry left behind for an address gone quiet
    streams.end.clear()
    again = await opened(middleware, "192.0.2.1")
    streams.end.set()
    await again
    assert middleware._open == {}


async def test_a_stream_that_fails_frees_its_place_too() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("broken")

    middleware = StreamLimitMiddleware(fails, per_client=1, is_stream=lambda scope: True)
    for _ in range(2):  # the second would be refused if the first still counted
        with pytest.raises(RuntimeError, match="broken"):
            await Exchange().run(middleware, http_scope())
    assert middleware._open == {}


async def test_requests_that_are_not_streams_are_not_counted_or_refused() -> None:
    streams = Streams()
    middleware = limited(streams, per_client=1)
    running = await opened(middleware, "192.0.2.1")
    streams.end.set()  # what follows answers at once
    answer = await Exchange().run(middleware, http_scope(path="/tasks", client=("192.0.2.1", 1)))
    assert answer.status == 200
    await running


async def test_a_request_without_a_client_address_is_counted_as_one_address() -> None:
    streams = Streams()
    middleware = limited(streams, per_client=1)
    running = await opened(middleware, None)
    answer = await Exchange().run(middleware, http_scope(path="/stream", client=None))
    assert answer.status == 429
    streams.end.set()
    await running


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = StreamLimitMiddleware(app, per_client=1, is_stream=lambda scope: True)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "websocket", "path": "/"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]


# As create_app wires it, through a real server -------------------------------------------


class AccessLog(logging.Handler):
    """Waits for the access log line of a request: it is written once the whole stack,
    the stream cap's count included, has let the request go."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._changed.set()

    async def written(self, fragment: str) -> None:
        async with asyncio.timeout(FAILSAFE_S):
            while not any(fragment in line for line in self.lines):
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def access_log() -> AsyncIterator[AccessLog]:
    logger = logging.getLogger("taskwire.access")
    handler, previous = AccessLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def assert_refused(response: httpx.Response, path: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert (body["status"], body["instance"]) == (429, path)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "open streams" in body["detail"]


async def test_a_third_stream_from_one_address_is_refused_until_one_closes(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_streams_per_client=2, long_poll_max_s=3600)
    subscriptions = Subscriptions(bus_of(app))
    async with (
        access_log() as log,
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client,
        AsyncExitStack() as streams,
    ):
        await engine_of(app).close()  # no worker: the task stays queued until cancelled
        task = (await client.post("/tasks", json={"task_type": "unstable_task"})).json()
        path = f"/tasks/{task['task_id']}"

        first = await streams.enter_async_context(client.stream("GET", "/events"))
        second = await streams.enter_async_context(client.stream("GET", "/events"))
        assert (first.status_code, second.status_code) == (200, 200)
        await subscriptions.open_now(2)

        assert_refused(await client.get("/events"), "/events")
        assert_refused(await client.get("/tasks", params={"watch": "true"}), "/tasks")
        assert_refused(await client.get(f"{path}/events"), f"{path}/events")
        assert subscriptions.count == 2  # none of them subscribed

        # Neither a long-poll nor a plain read counts as a stream.
        waiting = asyncio.create_task(client.get(path, params={"wait": "true"}))
        await subscriptions.opened(3)
        assert (await client.get("/tasks")).status_code == 200
        assert (await client.get(path)).status_code == 200
        assert (await client.delete(path)).json()["status"] == "cancelled"
        async with asyncio.timeout(FAILSAFE_S):
            answered = await waiting
        assert (answered.status_code, answered.json()["status"]) == (200, "cancelled")

        await first.aclose()
        await log.written('"GET /events" 200')  # the closed stream has let go of its place
        async with client.stream("GET", "/events") as third:
            assert third.status_code == 200
            await subscriptions.opened(4)


async def test_a_watch_spelled_with_percent_escapes_is_counted_too(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_streams_per_client=1)
    subscriptions = Subscriptions(bus_of(app))
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client,
        client.stream("GET", "/events") as first,
    ):
        assert first.status_code == 200
        await subscriptions.open_now(1)
        async with client.stream("GET", "/tasks?%77atch=true") as watch:
            assert watch.status_code == 429, watch.headers["content-type"]
