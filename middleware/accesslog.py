"""Request ids, the access log and request timing: each request gets an id (``X-Request-ID``,
``middleware/requestid.py``), is timed until it has been answered, then written as one log
line with its status and duration, and handed to ``observe`` (request metrics). Its answer
also gets the headers every answer carries (``nosniff``).

The method, path and query are the client's choice: they are logged escaped (``logsafe``).
They share one layer because each needs to see every answer start (to add the headers, or
to note the status), and a layer of its own for each costs a request its own ``send``
wrapper: with the id always given, timing for metrics adds two clock reads and the
recording, nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.headers import STARTS, add_headers
from middleware.logsafe import printable
from middleware.requestid import HEADER, choose_request_id, request_id

logger = logging.getLogger("taskwire.access")

Observe = Callable[[str, str, int, float], None]
"""Told ``(route, method, status, seconds)`` of each request once it has been answered."""

UNMATCHED = "unmatched"
"""The route of a request no route took: never its raw path, which a client chooses."""


class AccessLogMiddleware:
    """Gives each request (and WebSocket handshake) its id, logs ``client method path?query
    status duration``, and tells ``observe`` of each request; a stream is logged and
    observed when it ends. The id is the client's ``X-Request-ID`` if it is short and plain,
    else a new one; it is on the answer and, while the request is served, in ``request_id``.

    Args:
        headers: fixed headers for every answer, a WebSocket handshake's refusal included
            (``X-Content-Type-Options: nosniff``, say), added with the id: encoded once here,
            not on every answer.
        secret_params: query parameters whose values never reach the log (a key passed as
            ``?access_token=``): logged as ``***``.
        observe: records each request's route, method, status and duration (a Prometheus
            histogram, say). The route is the template of the route that took the request
            (``/tasks/{task_id}``), read from the ``route`` the router leaves in the scope, so
            that its values are as few as the routes; the status is 0 if the client left
            before any answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str] | None = None,
        secret_params: Collection[str] = (),
        observe: Observe | None = None,
    ) -> None:
        self.app = app
        self._fixed = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        self.secret_params = frozenset(secret_params)
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        rid = choose_request_id(scope["headers"])
        token = request_id.set(rid.decode("latin-1"))
        http = scope["type"] == "http"  # a handshake gets its id, and is neither logged nor timed
        logs = http and logger.isEnabledFor(logging.INFO)
        timed = http and (logs or self.observe is not None)
        started = time.perf_counter() if timed else 0.0
        status = 0  # stays 0 if the client left before any answer

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in STARTS:
                status = message["status"]
                add_headers(message, ((HEADER, rid), *self._fixed))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if timed:
                seconds = time.perf_counter() - started
                if self.observe is not None:
                    route = getattr(scope.get("route"), "path", None) or UNMATCHED
                    self.observe(route, scope["method"], status, seconds)
                if logs:
                    self._log(scope, status, seconds)
            request_id.reset(token)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        query = self._loggable(scope.get("query_string", b"").decode("latin-1"))
        target = scope["path"] + ("?" + query if query else "")
        logger.info(
            '%s "%s %s" %d %.1fms',
            client[0] if client else "-",
            printable(scope["method"]),
            printable(target),  # chosen by the client: one line, no terminal escapes
            status,
            seconds * 1000,
        )

    def _loggable(self, query: str) -> str:
        if not self.secret_params or not query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(name in self.secret_params for name, _ in pairs):
            return query
        hidden = [(n, "***" if n in self.secret_params else v) for n, v in pairs]
        return urlencode(hidden, safe="*")
