"""Error classification: exceptions become RFC 9457 problem answers, chosen with ``match``.

Like Starlette's ``ServerErrorMiddleware`` it tracks whether the response has started: before
that it answers with problem JSON; after it (a stream under way) it can only log and let the
server close the connection, so the client sees a broken stream rather than a false end.

The app's own exceptions are mapped by the ``classify`` function it passes in; this layer
knows only Starlette's ``HTTPException`` and that anything unknown is a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.logsafe import printable
from middleware.problem import Problem

logger = logging.getLogger("taskwire.errors")

Classify = Callable[[Exception], Problem | None]
"""The app's mapping of its exceptions to problems; None for an exception it does not know."""

_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def http_problem(exc: HTTPException, scope: Scope) -> Problem:
    match exc:
        case HTTPException(status_code=404):
            return Problem(404, f"nothing is served at {scope['path']}")
        case HTTPException(status_code=405, headers=headers):
            # Where no route of the path has methods (a mount), the app below named them.
            allow = ", ".join(_allowed_methods(scope)) or (headers or {}).get("Allow", "")
            return Problem(405, f"{scope['method']} is not allowed here", headers={"Allow": allow})
        case HTTPException(status_code=status, detail=detail, headers=headers):
            return Problem(status, detail, headers=headers or {})


class ErrorMiddleware:
    """Answers every exception from the app below with problem JSON.

    Args:
        classify: maps the app's own exceptions to problems (None: unexpected, a 500).
    """

    def __init__(self, app: ASGIApp, *, classify: Classify) -> None:
        self.app = app
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            # Gone before its body was read: nobody to answer, and nothing went wrong here.
            logger.info("%s %s: the client left mid-request", *_request_line(scope))
        except Exception as exc:
            problem = self._problem(exc, scope)
            if problem.status >= 500 and problem.status != 503:
                logger.error("%s %s failed", *_request_line(scope), exc_info=exc)
            if started:
                logger.warning("%s %s broke off mid-response", *_request_line(scope))
                return
            await problem(scope, receive, send)

    def _problem(self, exc: Exception, scope: Scope) -> Problem:
        if isinstance(exc, HTTPException):
            return http_problem(exc, scope)
        problem = self.classify(exc)
        if problem is None:
            return Problem(500, "an unexpected error occurred; quote the request_id to report it")
        return problem


def _request_line(scope: Scope) -> tuple[str, str]:
    return printable(scope["method"]), printable(scope["path"])


def _allowed_methods(scope: Scope) -> list[str]:
    # Starlette's 405 lists only the methods of the first route whose path matched, but
    # GET /tasks and POST /tasks are two routes; Allow must name every method of the path.
    routes = [route for route in scope["app"].routes if getattr(route, "methods", None)]
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
