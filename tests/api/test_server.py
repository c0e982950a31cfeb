"""``api/server.py``: uvicorn as Taskwire runs it; deadlines for each request's head and body.

uvicorn runs in this process with ``HeadTimeoutProtocol`` (its deadline cut to a fraction of
a second), and raw sockets play the clients: one that sends nothing, one that stops halfway
through its head. Waiting for the server to close a connection is reading until the end of
the stream, an event; and what shows that a deadline did *not* cut a connection is another
connection's deadline having passed meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api.server import (
    BODY_MIN_RATE,
    BODY_TIMEOUT_S,
    HEAD_TIMEOUT_S,
    MAX_HEAD_BYTES,
    MAX_PIPELINED,
    HeadTimeoutProtocol,
    uvicorn_options,
)
from tests.support import FAILSAFE_S, Subscriptions, bus_of, engine_of, serve


def refused(answer: bytes, status_line: bytes) -> dict[str, object]:
    """The problem of an answer written straight to the socket: its status line, problem
    JSON with a request id that the header repeats, and the connection closed after it."""
    head, _, body = answer.partition(b"\r\n\r\n")
    problem: dict[str, object] = orjson.loads(body)
    assert head.startswith(status_line + b"\r\n"), head
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head
    assert f"x-request-id: {problem['request_id']}".encode() in head
    return problem


def timed_out(answer: bytes) -> bool:
    return refused(answer, b"HTTP/1.1 408 Request Timeout")["status"] == 408


DEADLINE_S = 0.2


class QuickDeadline(HeadTimeoutProtocol):
    head_timeout_s = DEADLINE_S


class Connection:
    """A raw client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def response(self) -> bytes:
        """One whole response (its head and a ``content-length`` body)."""
        async with asyncio.timeout(FAILSAFE_S):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            return head + await self.reader.readexactly(length)

    async def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        async with asyncio.timeout(FAILSAFE_S):
            return await self.reader.read()


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[Connection]:
    host, port = url.removeprefix("http://").split(":")
    async with asyncio.timeout(FAILSAFE_S):
        reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()


@pytest.fixture
async def url(make_app: Callable[..., FastAPI]) -> AsyncIterator[str]:
    async with serve(make_app(), http=QuickDeadline) as url:
        yield url


async def a_deadline_has_passed(url: str) -> None:
    """Wait until a connection that sends nothing is cut: ``DEADLINE_S`` has passed since."""
    async with connection(url) as silent:
        assert timed_out(await silent.until_closed())


def request(path: str = "/healthz", *, close: bool = False) -> bytes:
    connection_header = b"Connection: close\r\n" if close else b""
    return b"GET %s HTTP/1.1\r\nHost: tw\r\n%s\r\n" % (path.encode(), connection_header)


async def test_a_connection_that_sends_nothing_gets_a_408_and_is_closed(url: str) -> None:
    async with connection(url) as silent:
        assert timed_out(await silent.until_closed())


async def test_a_connection_that_stops_halfway_through_its_head_gets_a_408_and_is_closed(
    url: str,
) -> None:
    async with connection(url) as slow:
        slow.send(b"GET /healthz HTTP/1.1\r\nHost: tw\r\nX-Slow")
        assert timed_out(await slow.until_closed())


async def test_a_request_whose_head_arrives_is_answered(url: str) -> None:
    async with connection(url) as client:
        client.send(request(close=True))
        answer = await client.until_closed()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"status":"ok"' in answer


async def test_a_kept_alive_connection_is_not_cut_between_requests(url: str) -> None:
    async with connection(url) as client:
        client.send(request())
        assert (await client.response()).startswith(b"HTTP/1.1 200 OK\r\n")
        await a_deadline_has_passed(url)  # idle, past the deadline: uvicorn's keep-alive rules
        client.send(request())
        assert (await client.response()).startswith(b"HTTP/1.1 200 OK\r\n")
        client.send(request(close=True))
        assert (await client.until_closed()).startswith(b"HTTP/1.1 200 OK\r\n")


async def test_the_deadline_starts_again_for_each_request_on_a_connection(url: str) -> None:
    async with connection(url) as client:
        client.send(request())
        assert (await client.response()).startswith(b"HTTP/1.1 200 OK\r\n")
        client.send(b"GET /healthz HTTP/1.1\r\nHo")  # the next request's head stops halfway
        assert timed_out(await client.until_closed())


async def test_a_slow_body_is_not_cut_once_the_head_has_arrived(url: str) -> None:
    body = b'{"task_type": "compute_sum", "parameters": {"numbers": [1, 2]}}'
    async with connection(url) as client:
        client.send(
            b"POST /tasks HTTP/1.1\r\nHost: tw\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body[:10])
        )
        await a_deadline_has_passed(url)
        client.send(body[10:])
        answer = await client.until_closed()
    assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n")


async def test_a_long_poll_is_not_cut(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(long_poll_max_s=3600)
    subscriptions = Subscriptions(bus_of(app))
    async with (
        serve(app, http=QuickDeadline) as url,
        httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client,
    ):
        await engine_of(app).close()  # no worker: the task stays queued until cancelled
        task = (await client.post("/tasks", json={"task_type": "unstable_task"})).json()
        path = f"/tasks/{task['task_id']}"
        async with connection(url) as waiting:
            waiting.send(request(f"{path}?wait=true", close=True))
            await subscriptions.opened(1)
            await a_deadline_has_passed(url)
            assert (await client.delete(path)).json()["status"] == "cancelled"
            answer = await waiting.until_closed()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"status":"cancelled"' in answer


def test_uvicorn_options_are_the_head_deadline_no_websocket_and_a_connection_cap() -> None:
    assert uvicorn_options(7) == {
        "http": HeadTimeoutProtocol,
        "ws": "none",
        "limit_concurrency": 7,
    }
    assert HeadTimeoutProtocol.head_timeout_s == HEAD_TIMEOUT_S == 10.0
    assert HeadTimeoutProtocol.body_timeout_s == BODY_TIMEOUT_S == 20.0
    assert HeadTimeoutProtocol.body_min_rate == BODY_MIN_RATE == 500


class DeadlineEach(HeadTimeoutProtocol):
    """Each connection with the deadline the test sets before opening it."""

    next_s = DEADLINE_S
    made: asyncio.Queue[HeadTimeoutProtocol]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.head_timeout_s = DeadlineEach.next_s
        super().connection_made(transport)
        DeadlineEach.made.put_nowait(self)


async def test_the_first_byte_of_the_first_request_does_not_start_the_clock_again(
    make_app: Callable[..., FastAPI],
) -> None:
    DeadlineEach.made = asyncio.Queue()
    loop = asyncio.get_running_loop()
    async with serve(make_app(), http=DeadlineEach) as url:
        DeadlineEach.next_s = 0.6
        started = loop.time()
        async with connection(url) as late:
            async with asyncio.timeout(FAILSAFE_S):
                await DeadlineEach.made.get()
            DeadlineEach.next_s = 0.3
            async with connection(url) as silent:  # a timer: closed 0.3 s after it opened
                assert timed_out(await silent.until_closed())
            late.send(b"G")  # halfway through its 0.6 s
            assert timed_out(await late.until_closed())
            # Closed 0.6 s after it opened (unfixed: 0.6 s after the "G", 0.9 s at least).
            assert loop.time() - started < 0.85


async def test_a_head_over_its_limit_gets_a_431_and_is_closed(url: str) -> None:
    async with connection(url) as client:
        line = b"GET /healthz HTTP/1.1\r\nHost: tw\r\n"
        client.send(line)
        client.send(b"X" * (MAX_HEAD_BYTES - len(line)) + b"Y")  # one byte over, unfinished
        answer = await client.until_closed()
    assert refused(answer, b"HTTP/1.1 431 Request Header Fields Too Large")["status"] == 431


async def test_a_head_of_just_the_limit_is_answered(url: str) -> None:
    async with connection(url) as client:
        line = b"GET /healthz HTTP/1.1\r\nHost: tw\r\nConnection: close\r\nX-Fill: "
        client.send(line)
        client.send(b"f" * (MAX_HEAD_BYTES - len(line) - 2) + b"\r\n")  # the limit, unfinished
        client.send(b"\r\n")
        assert (await client.until_closed()).startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_request_that_is_not_http_gets_a_400_problem(url: str) -> None:
    async with connection(url) as client:
        client.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # an HTTP/2 preface
        problem = refused(await client.until_closed(), b"HTTP/1.1 400 Bad Request")
    assert problem["status"] == 400


async def test_a_client_that_pipelines_requests_without_reading_is_cut_off(url: str) -> None:
    async with connection(url) as client:
        client.send(request("/tasks?wait=true") * (MAX_PIPELINED + 10))
        answer = await client.until_closed()
    assert answer.count(b"HTTP/1.1 ") <= 1  # at most the one being answered


async def test_a_few_pipelined_requests_are_each_answered(url: str) -> None:
    async with connection(url) as client:
        client.send(request() * 3 + request(close=True))
        answer = await client.until_closed()
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 4


class QuickBody(HeadTimeoutProtocol):
    """Deadlines of ``DEADLINE_S`` for a head and for a body, and a second more for every
    ``body_min_rate`` bytes of body received."""

    head_timeout_s = body_timeout_s = DEADLINE_S
    body_min_rate = 100


SUBMIT = b'{"task_type": "compute_sum", "parameters": {"numbers": [1, 2]}}'


def post_head(length: int) -> bytes:
    return (
        b"POST /tasks HTTP/1.1\r\nHost: tw\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % length
    )


@pytest.fixture
async def quick_body(make_app: Callable[..., FastAPI]) -> AsyncIterator[str]:
    async with serve(make_app(), http=QuickBody) as url:
        yield url


async def test_a_body_that_stops_coming_gets_a_408_and_nothing_is_submitted(
    quick_body: str,
) -> None:
    async with connection(quick_body) as client:
        client.send(post_head(len(SUBMIT)) + SUBMIT[:10])
        problem = refused(await client.until_closed(), b"HTTP/1.1 408 Request Timeout")
    assert "body did not arrive in time" in str(problem["detail"])
    async with httpx.AsyncClient(base_url=quick_body, timeout=FAILSAFE_S) as other:
        assert (await other.get("/tasks")).json() == []


async def test_the_bytes_a_body_has_sent_earn_it_time(quick_body: str) -> None:
    padded = SUBMIT + b" " * 400  # 400 bytes more: 4 s more at 100 bytes a second
    async with connection(quick_body) as client:
        client.send(post_head(len(padded)) + padded[:-1])
        await a_deadline_has_passed(quick_body)  # the bare body deadline, passed
        client.send(padded[-1:])
        answer = await client.until_closed()
    assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n")


class NoBodyCredit(HeadTimeoutProtocol):
    head_timeout_s = body_timeout_s = DEADLINE_S
    body_min_rate = 10**12  # bytes earn no time


async def test_the_body_clock_does_not_run_while_the_server_is_not_reading(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    subscriptions = Subscriptions(bus_of(app))
    async with (
        serve(app, http=NoBodyCredit) as url,
        httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client,
    ):
        await engine_of(app).close()  # no worker: the task stays queued until cancelled
        task = (await client.post("/tasks", json={"task_type": "unstable_task"})).json()
        path = f"/tasks/{task['task_id']}?wait=true"
        body = b" " * 200_000  # more than uvicorn holds: it stops reading, the rest waits
        async with connection(url) as waiting:
            waiting.send(  # kept alive: closed with its body unread, the answer would be reset
                b"GET %s HTTP/1.1\r\nHost: tw\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), len(body), body)
            )
            await subscriptions.opened(1)
            await a_deadline_has_passed(url)
            assert (await client.delete(f"/tasks/{task['task_id']}")).status_code == 200
            answer = await waiting.response()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"status":"cancelled"' in answer
