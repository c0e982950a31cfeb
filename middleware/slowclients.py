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
from collections.abc import Callable

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


class OpenResponses:
    """The responses being sent now, so that a shutdown can cut off those nobody reads."""

    def __init__(self) -> None:
        self._aborts: dict[int, Abort | None] = {}
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._next = 0

    def __len__(self) -> int:
        return len(self._aborts)

    def add(self, abort: Abort | None) -> int:
        self._next += 1
        self._aborts[self._next] = abort
        self._none_open.clear()
        return self._next

    def remove(self, key: int) -> None:
        self._aborts.pop(key, None)
        if not self._aborts:
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
        for abort in list(self._aborts.values()):
            if abort is not None:
                abort()
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
    """

    def __init__(
        self, app: ASGIApp, *, send_timeout_s: float, responses: OpenResponses | None = None
    ) -> None:
        self.app = app
        self.send_timeout_s = send_timeout_s
        self.responses = responses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        abort = abort_of(send)
        cut_off = False

        async def send_in_time(message: Message) -> None:
            nonlocal cut_off
            if cut_off:
                return  # gone: what the app still sends goes nowhere
            if message["type"] != "http.response.body":
                await send(message)
                return
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await send(message)
            except TimeoutError:
                cut_off = True
                logger.warning(
                    '%s "%s %s": cut off, the client took no bytes for %g s',
                    _client(scope),
                    printable(scope["method"]),
                    printable(scope["path"]),
                    self.send_timeout_s,
                )
                if abort is None:
                    raise ClientDisconnect() from None
                abort()
                await asyncio.sleep(0)  # the server hears of it before the app sends more

        key = None if self.responses is None else self.responses.add(abort)
        try:
            await self.app(scope, receive, send_in_time)
        finally:
            if self.responses is not None and key is not None:
                self.responses.remove(key)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"
