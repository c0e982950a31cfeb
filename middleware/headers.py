"""Headers every response carries, whatever answered it."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StaticHeadersMiddleware:
    """Adds fixed headers to every HTTP response (e.g. ``X-Content-Type-Options: nosniff``).

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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).raw.extend(self._raw)
            await send(message)

        await self.app(scope, receive, send_with_headers)
