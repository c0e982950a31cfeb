"""What the client and CLI tests share: a real server in this loop or in a thread of its own,
work that the test holds or steps, a proxy that loses answers, and sleeps that only record."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from service.tasktypes import Submission, TaskSubmission, Work
from taskwire import AsyncClient
from tests.support import FAILSAFE_S, FakeClock, serve

T = TypeVar("T")
SUBMISSION: TypeAdapter[Submission] = TypeAdapter(TaskSubmission)
SUM = {"numbers": [1, 2, 3.5]}


def submission(task_type: str = "compute_sum", **parameters: Any) -> Submission:
    """A submission for ``engine.submit``, straight into the service (no request)."""
    return SUBMISSION.validate_python({"task_type": task_type, "parameters": parameters or SUM})


@asynccontextmanager
async def live_client(app: FastAPI, **options: Any) -> AsyncIterator[AsyncClient]:
    """``app`` served by uvicorn on a free port in this loop, and an AsyncClient for it."""
    async with serve(app) as url, AsyncClient(url, **options) as client:
        yield client


class ThreadedServer:
    """``app`` served by uvicorn in a thread with its own event loop, for the blocking
    ``Client`` and the CLI, which block the test's thread. ``call`` runs a coroutine there
    (e.g. a helper of tests/support.py) and returns its result."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(FAILSAFE_S) or not self.url:
            raise RuntimeError(f"the test server did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(FAILSAFE_S)
        assert not self._thread.is_alive(), "the test server did not stop"

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(FAILSAFE_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as failure:  # reported by __enter__
            self._failure = failure
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self.app) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()


@pytest.fixture
def threaded(make_app: Callable[..., FastAPI]) -> Callable[..., ThreadedServer]:
    """``threaded(**settings)``: a ThreadedServer of a new app (to use with ``with``)."""
    return lambda **settings: ThreadedServer(make_app(**settings))


class Gate:
    """Stands in for the work: every job waits here until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self._entered = asyncio.Condition()

    async def __call__(self, *args: object) -> Any:
        async with self._entered:
            self.entered += 1
            self._entered.notify_all()
        await self.release.wait()
        return {"gated": True}

    async def open(self) -> None:
        """Let every job through (a coroutine, so that another thread can ``call`` it)."""
        self.release.set()

    async def reached_by(self, n: int) -> None:
        async with asyncio.timeout(FAILSAFE_S), self._entered:
            await self._entered.wait_for(lambda: self.entered >= n)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr("service.engine.perform", gate)
    return gate


class Steps:
    """Stands in for the work: a job waits until the test releases it, then reports 25%,
    50% and 75% (the fake clock moved on between, so that none is throttled) and completes."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.release = asyncio.Event()

    async def __call__(self, params: object, work: Work, rng: object) -> Any:
        await self.release.wait()
        for fraction in (0.25, 0.5, 0.75):
            self.clock.advance(1)
            await work._report(fraction)
        return {"stepped": True}

    async def go(self) -> None:
        self.release.set()


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Steps:
    steps = Steps(clock)
    monkeypatch.setattr("service.engine.perform", steps)
    return steps


@dataclass
class Sleeps:
    """A stand-in for the client's sleep: it records what it is asked to wait, waits for
    nothing, and runs ``then`` (e.g. the change that makes the retry succeed)."""

    asked: list[float] = field(default_factory=list)
    then: Callable[[float], object] | None = None

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.then is not None:
            self.then(seconds)


@dataclass
class AsyncSleeps:
    """``Sleeps`` for the AsyncClient: ``then`` may be a coroutine function."""

    asked: list[float] = field(default_factory=list)
    then: Callable[[float], Awaitable[object]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.then is not None:
            await self.then(seconds)


@dataclass
class Seen:
    """One request as a ``LossyProxy`` saw it."""

    method: str
    path: str
    headers: dict[str, str]
    dropped: bool


class LossyProxy:
    """A TCP proxy in front of a server that loses the answers of chosen requests.

    A request that ``lose`` picks (by its method and path) is passed on, and the proxy waits
    for the first bytes of the answer, so the service has done what was asked; then it
    resets the client's connection instead of passing the answer on. With ``cut_after``, it
    first passes on the answer up to the end of that marker: a stream broken off midway.

    Each request must come on a connection of its own (the client's ``httpx`` client without
    keep-alive), so that each one's head is read here.
    """

    def __init__(
        self,
        upstream: str,
        lose: Callable[[str, str], bool],
        *,
        times: int = 1,
        cut_after: bytes | None = None,
    ):
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._lose = lose
        self._times = times
        self._cut_after = cut_after
        self.seen: list[Seen] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._transports: set[asyncio.BaseTransport] = set()

    async def __aenter__(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for transport in list(self._transports):  # open streams: break them off
            transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self._transports.add(client_writer.transport)
        server_writer: asyncio.StreamWriter | None = None
        upward: asyncio.Task[None] | None = None
        try:
            head = await client_reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            lose = self._times > 0 and self._lose(method, path)
            if lose:
                self._times -= 1
            self.seen.append(Seen(method, path, headers, lose))
            server_reader, server_writer = await asyncio.open_connection(*self._upstream)
            self._transports.add(server_writer.transport)
            server_writer.write(head)
            upward = asyncio.create_task(self._pipe(client_reader, server_writer))
            answer = await server_reader.read(65536)
            if lose and self._cut_after is not None:  # pass on a part, then break off
                while self._cut_after not in answer:
                    answer += await server_reader.read(65536)
                end = answer.index(self._cut_after) + len(self._cut_after)
                client_writer.write(answer[:end])
                await client_writer.drain()
            if lose:
                client_writer.transport.abort()  # the rest of the answer is lost
                return
            while answer:
                client_writer.write(answer)
                await client_writer.drain()
                answer = await server_reader.read(65536)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a connection reset or aborted: this exchange is over
        finally:
            if upward is not None:
                upward.cancel()
                await asyncio.gather(upward, return_exceptions=True)
            for writer in (server_writer, client_writer):
                if writer is not None:
                    self._transports.discard(writer.transport)
                    writer.transport.abort()
            self._handlers.discard(handler)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write_eof()  # the client is done sending: so is the server's side
        except OSError:
            pass


def no_keepalive() -> httpx.AsyncClient:
    """An httpx client whose every request opens its own connection (see LossyProxy)."""
    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
