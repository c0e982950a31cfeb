"""Headers every response carries, whatever answered it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RawHeaders = Iterable[tuple[bytes, bytes]]
STARTS = ("http.response.start", "websocket.http.response.start")


def add_headers(message: Message, raw: RawHeaders) -> None:
    """Adds ``raw`` headers to a response's start message.

    ASGI lets the message leave ``headers`` out, or give any iterable; and the app may send
    the same list again (a response object answered twice), so it is copied, not extended.
    """
    message["headers"] = [*message.get("headers", ()), *raw]


class StaticHeadersMiddleware:
    """Adds fixed headers to every HTTP response (e.g. ``X-Content-Type-Options: nosniff``),
    a WebSocket handshake's refusal included.

    Args:
        headers: names and values, encoded once here rather than on every response.
    """

    def __init__(self, app: ASGIApp, *, headers: Mapping[str, str]) -> None:
        self.app = app
        self._raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in STARTS:
                add_headers(message, self._raw)
            await send(message)

        await self.app(scope, receive, send_with_headers)
