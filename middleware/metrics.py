"""Request metrics: each request's duration, by route template, method and status."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Observe = Callable[[str, str, int, float], None]
"""Told ``(route, method, status, seconds)`` of each request once it has been answered."""

UNMATCHED = "unmatched"
"""The route of a request no route took: never its raw path, which a client chooses."""


class RequestMetricsMiddleware:
    """Times every HTTP request (a stream: until it ends) and hands the figures to ``observe``.

    The route is the template of the route that took the request (``/tasks/{task_id}``), read
    from the ``route`` the router leaves in the scope, so that the label's values are as few
    as the routes. The status is 0 if the client left before any answer.

    Args:
        observe: records one request (a Prometheus histogram, say).
    """

    def __init__(self, app: ASGIApp, *, observe: Observe) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.observe(route, scope["method"], status, time.perf_counter() - started)
