"""Slow clients: a response whose client takes no bytes for a while is cut off, at once.

A client that stops reading (the oldest trick against streaming servers) leaves the server
holding what it already wrote, and a graceful close waits for the client to take it. So a
send that waits longer than ``send_timeout_s`` aborts the connection: what was buffered for
it is freed at once, the app below sees the client leave, and it is logged once. On
shutdown, ``OpenResponses.close`` does the same to every response still being sent.

Notes:
    Aborting needs the connection's transport, which ASGI does not expose; uvicorn's
    ``send`` is a method of its request cycle, which holds it. Under a server that does not
    give it away, a stuck send ends with ``ClientDisconnect`` instead, and the close is
    left to the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.logsafe import printable

logger = logging.getLogger("taskwire.slowclients")

Abort = Callable[[], object]


def abort_of(send: Send) -> Abort | None:
    """The abort of the connection behind ``send``, where the server lets it be found."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


class Answer:
    """One response being sent: how to abort its connection, and since when (event-loop
    time) its current send of the body has been waiting, if it is in one."""

    __slots__ = ("abort", "cut_off", "scope", "sending_since")

    def __init__(self, abort: Abort | None, scope: Scope) -> None:
        self.abort = abort
        self.scope = scope
        self.sending_since: float | None = None
        self.cut_off = False


class OpenResponses:
    """The responses being sent now: watched for sends that wait too long, and cut off at
    shutdown if nobody reads them."""

    def __init__(self) -> None:
        self._open: set[Answer] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Answer]:
        return iter(list(self._open))

    def add(self, answer: Answer) -> None:
        self._open.add(answer)
        self._none_open.clear()

    def remove(self, answer: Answer) -> None:
        self._open.discard(answer)
        if not self._open:
            self._none_open.set()

    async def close(self, grace_s: float) -> int:
        """Give the open responses ``grace_s`` to finish, then abort the connections of the
        rest; returns how many were aborted."""
        try:
            async with asyncio.timeout(grace_s):
                await self._none_open.wait()
        except TimeoutError:
            pass
        aborted = 0
        for answer in self:
            if answer.abort is not None:
                answer.cut_off = True
                answer.abort()
                aborted += 1
        if aborted:
            logger.warning("cut off %d clients still being answered at shutdown", aborted)
        return aborted


class SlowClientMiddleware:
    """Cuts off a client that takes no bytes of its response for ``send_timeout_s``.

    Args:
        send_timeout_s: longest one send of the response body may wait for the client.
        responses: where the responses being sent are kept, for shutdown (optional).

    Place it outermost, so that it is handed the server's own ``send``.

    Notes:
        A send nearly always returns at once (the server buffers it), so none is given a
        timer of its own: each notes when it started, and one watchdog, running while
        responses are open, looks every ``send_timeout_s / 4`` (at most every second) for
        one that has waited too long. So a client is cut off between ``send_timeout_s`` and
        a quarter more after its send began.
    """

    def __init__(
        self, app: ASGIApp, *, send_timeout_s: float, responses: OpenResponses | None = None
    ) -> None:
        self.app = app
        self.send_timeout_s = send_timeout_s
        self.responses = responses if responses is not None else OpenResponses()
        self._every_s = min(1.0, send_timeout_s / 4)
        self._watchdog: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        abort = abort_of(send)
        if abort is None:
            await self.app(scope, receive, self._timed(scope, send))
            return
        loop = asyncio.get_running_loop()
        answer = Answer(abort, scope)

        async def send_watched(message: Message) -> None:
            if answer.cut_off:
                return  # gone: what the app still sends goes nowhere
            if message["type"] != "http.response.body":
                await send(message)
                return
            answer.sending_since = loop.time()
            try:
                await send(message)
            finally:
                answer.sending_since = None

        self.responses.add(answer)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = loop.create_task(self._watch(), name="taskwire-slow-clients")
        try:
            await self.app(scope, receive, send_watched)
        finally:
            self.responses.remove(answer)

    async def _watch(self) -> None:
        """Cut off the clients whose send has waited too long; ends once none is open."""
        loop = asyncio.get_running_loop()
        while len(self.responses):
            await asyncio.sleep(self._every_s)
            too_early = loop.time() - self.send_timeout_s
            for answer in self.responses:
                since = answer.sending_since
                if since is not None and since <= too_early and not answer.cut_off:
                    answer.cut_off = True
                    self._log(answer.scope)
                    assert answer.abort is not None
                    answer.abort()

    def _timed(self, scope: Scope, send: Send) -> Send:
        """Where the connection cannot be aborted, each send of the body is timed instead,
        and one that waits too long ends the request with ``ClientDisconnect``."""

        async def send_in_time(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await send(message)
            except TimeoutError:
                self._log(scope)
                raise ClientDisconnect() from None

        return send_in_time

    def _log(self, scope: Scope) -> None:
        logger.warning(
            '%s "%s %s": cut off, the client took no bytes for %g s',
            _client(scope),
            printable(scope["method"]),
            printable(scope["path"]),
            self.send_timeout_s,
        )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"
