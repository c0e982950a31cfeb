"""Access log: one line per request, once it has been answered, with status and duration.

The method, path and query are the client's choice: they are logged escaped (``logsafe``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.logsafe import printable

logger = logging.getLogger("taskwire.access")


class AccessLogMiddleware:
    """Logs ``client method path?query status duration``; a stream is logged when it ends.

    Args:
        secret_params: query parameters whose values never reach the log (a key passed as
            ``?access_token=``): logged as ``***``.
    """

    def __init__(self, app: ASGIApp, *, secret_params: Collection[str] = ()) -> None:
        self.app = app
        self.secret_params = frozenset(secret_params)

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
            query = self._loggable(scope.get("query_string", b"").decode("latin-1"))
            target = scope["path"] + ("?" + query if query else "")
            logger.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                printable(scope["method"]),
                printable(target),  # chosen by the client: one line, no terminal escapes
                status,
                (time.perf_counter() - started) * 1000,
            )

    def _loggable(self, query: str) -> str:
        if not self.secret_params or not query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(name in self.secret_params for name, _ in pairs):
            return query
        return urlencode([(n, "***" if n in self.secret_params else v) for n, v in pairs])
