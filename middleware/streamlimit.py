"""A cap on the streams one client address keeps open at once.

Each open stream holds a connection, a subscription and its queue: a client that opens
hundreds shuts others out as surely as one that floods requests, and a rate limit counts a
stream once, when it opens. Past the cap, a new stream is refused with a 429.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from middleware.problem import Problem
from middleware.ratelimit import QUOTA_EXCEEDED


class StreamLimitMiddleware:
    """At most ``per_client`` streams open at once per client address.

    Args:
        per_client: streams one address may hold open.
        is_stream: says whether a request opens a stream (the app knows its routes).
    """

    def __init__(
        self, app: ASGIApp, *, per_client: int, is_stream: Callable[[Scope], bool]
    ) -> None:
        self.app = app
        self.per_client = per_client
        self.is_stream = is_stream
        self._open: dict[str, int] = {}
        """Open streams by client address; an address with none is forgotten."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_stream(scope):
            await self.app(scope, receive, send)
            return

        client = scope.get("client")
        address = client[0] if client else "-"
        open_now = self._open.get(address, 0)
        if open_now >= self.per_client:
            refusal = Problem(
                429,
                f"this address already holds {open_now} open streams, the most allowed; "
                "close one first",
                type=QUOTA_EXCEEDED,
                headers={"Retry-After": "1"},
            )
            await refusal(scope, receive, send)
            return
        self._open[address] = open_now + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._open[address] - 1
            if left:
                self._open[address] = left
            else:
                del self._open[address]
