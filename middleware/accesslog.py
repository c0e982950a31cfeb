"""Access log: one line per request, once it has been answered, with status and duration.

The method, path and query are the client's choice: they are logged escaped (``logsafe``).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.logsafe import printable

logger = logging.getLogger("taskwire.access")


class AccessLogMiddleware:
    """Logs ``client method path status duration``; a stream is logged when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 0  # stays 0 if the client left before any answer

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            client = scope.get("client")
            query = scope.get("query_string", b"")
            target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
            logger.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                printable(scope["method"]),
                printable(target),  # chosen by the client: one line, no terminal escapes
                status,
                (time.perf_counter() - started) * 1000,
            )
