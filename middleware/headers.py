"""Adding headers to a response as it starts (the access log's, the rate limiter's...)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message

RawHeaders = Iterable[tuple[bytes, bytes]]
STARTS = ("http.response.start", "websocket.http.response.start")
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
"""On every answer: browsers take a body for what its Content-Type says, nothing else."""


def add_headers(message: Message, raw: RawHeaders) -> None:
    """Adds ``raw`` headers to a response's start message.

    ASGI lets the message leave ``headers`` out, or give any iterable; and the app may send
    the same list again (a response object answered twice), so it is copied, not extended.
    """
    message["headers"] = [*message.get("headers", ()), *raw]
