"""Slow clients: a stuck send cuts the connection off at once; shutdown cuts off the rest."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.slowclients import OpenResponses, SlowClientMiddleware, abort_of
from tests.middleware.harness import http_scope, logged
from tests.support import FAILSAFE_S


class Transport:
    def __init__(self) -> None:
        self.aborted = asyncio.Event()

    def abort(self) -> None:
        self.aborted.set()


class Cycle:
    """A server's request cycle, as uvicorn's: ``send`` is its method, and it holds the
    connection's transport. A client that stops reading makes body sends wait, until the
    connection is aborted."""

    def __init__(self, *, reads: bool) -> None:
        self.transport = Transport()
        self.reads = reads
        self.sent: list[Message] = []
        self.stuck = asyncio.Event()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not self.reads:
            self.stuck.set()
            await self.transport.aborted.wait()  # what uvicorn's flow control does
            return  # and, once disconnected, it takes what comes without sending it
        self.sent.append(message)

    async def receive(self) -> Message:
        await self.transport.aborted.wait()
        return {"type": "http.disconnect"}


def streaming(chunks: int) -> tuple[list[int], ASGIApp]:
    """An app that sends ``chunks`` body parts; the list says how many sends returned."""
    returned: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(chunks):
            await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
            returned.append(n)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return returned, app


async def test_a_client_that_reads_gets_everything() -> None:
    returned, app = streaming(3)
    cycle = Cycle(reads=True)
    guarded = SlowClientMiddleware(app, send_timeout_s=FAILSAFE_S)
    await guarded(http_scope(), cycle.receive, cycle.send)
    assert returned == [0, 1, 2]
    assert not cycle.transport.aborted.is_set()
    assert len(cycle.sent) == 5


async def test_a_client_that_stops_reading_is_cut_off_once_and_logged_once() -> None:
    returned, app = streaming(3)
    cycle = Cycle(reads=False)
    guarded = SlowClientMiddleware(app, send_timeout_s=0.01)
    with logged("taskwire.slowclients") as log:
        await guarded(http_scope(path="/events"), cycle.receive, cycle.send)
    assert cycle.transport.aborted.is_set()  # what was buffered is freed: no graceful close
    assert returned == [0, 1, 2]  # the app went on, its sends now going nowhere, and ended
    assert len(log.records) == 1 and log.levels == {"WARNING"}
    assert (
        log.messages[0] == '192.0.2.1 "GET /events": cut off, the client took no bytes for 0.01 s'
    )
    assert log.records[0].exc_info is None


async def test_without_a_transport_to_abort_a_stuck_send_ends_the_request() -> None:
    returned, app = streaming(3)

    async def stuck_send(message: Message) -> None:  # a plain function: no transport to find
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()

    guarded = SlowClientMiddleware(app, send_timeout_s=0.01)
    with pytest.raises(ClientDisconnect):
        await guarded(http_scope(), Cycle(reads=True).receive, stuck_send)
    assert returned == []


def test_the_abort_is_found_only_where_the_server_offers_it() -> None:
    cycle = Cycle(reads=True)
    assert abort_of(cycle.send) == cycle.transport.abort

    async def plain(message: Message) -> None:
        return None

    assert abort_of(plain) is None


async def test_lifespan_and_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    guarded = SlowClientMiddleware(app, send_timeout_s=0.01)
    await guarded({"type": "lifespan"}, Cycle(reads=True).receive, Cycle(reads=True).send)
    assert seen == ["lifespan"]


async def test_shutdown_waits_for_answers_that_finish_and_cuts_off_the_rest() -> None:
    responses = OpenResponses()
    stuck, done = Cycle(reads=False), Cycle(reads=True)
    _, app = streaming(1)
    guarded = SlowClientMiddleware(app, send_timeout_s=FAILSAFE_S, responses=responses)
    first = asyncio.create_task(guarded(http_scope(), stuck.receive, stuck.send))
    async with asyncio.timeout(FAILSAFE_S):
        await stuck.stuck.wait()
    await guarded(http_scope(), done.receive, done.send)  # answered in full, and gone
    assert len(responses) == 1  # the stuck one
    with logged("taskwire.slowclients") as log:
        assert await responses.close(grace_s=0.01) == 1
    async with asyncio.timeout(FAILSAFE_S):
        await first  # aborted: its send returned, and the app ended
    assert stuck.transport.aborted.is_set() and not done.transport.aborted.is_set()
    assert len(responses) == 0
    assert log.messages == ["cut off 1 clients still being answered at shutdown"]


async def test_shutdown_with_nothing_open_returns_at_once() -> None:
    assert await OpenResponses().close(grace_s=FAILSAFE_S) == 0
