"""Error classification: exceptions become RFC 9457 problem answers, chosen with ``match``.

Like Starlette's ``ServerErrorMiddleware`` it tracks whether the response has started: before
that it answers with problem JSON; after it (a stream under way) it can only log and let the
server close the connection, so the client sees a broken stream rather than a false end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.ratelimit import HEADERS_SCOPE_KEY, QUOTA_EXCEEDED, RateLimited
from middleware.requestid import request_id
from service.errors import QueueFull, StoreFull, TaskConflict, TaskNotFound
from service.tasktypes import TASK_TYPES

logger = logging.getLogger("taskwire.errors")

PROBLEM_JSON = "application/problem+json"
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


@dataclass(frozen=True, slots=True)
class Problem:
    """What an error answer says, before it is given an ``instance`` and a request id."""

    status: int
    detail: str
    type: str = "about:blank"
    headers: Mapping[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def response(self, instance: str) -> Response:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "request_id": request_id.get(),
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(
            orjson.dumps(body), self.status, headers=dict(self.headers), media_type=PROBLEM_JSON
        )


def classify(exc: Exception, scope: Scope) -> Problem:
    match exc:
        case RequestValidationError():
            errors = [_field_error(error) for error in exc.errors()]
            return Problem(400, _summary(errors), errors=errors)
        case HTTPException(status_code=404):
            return Problem(404, f"nothing is served at {scope['path']}")
        case HTTPException(status_code=405, headers=headers):
            # Where no route of the path has methods (a mount), the app below named them.
            allow = ", ".join(_allowed_methods(scope)) or (headers or {}).get("Allow", "")
            return Problem(405, f"{scope['method']} is not allowed here", headers={"Allow": allow})
        case HTTPException(status_code=status, detail=detail, headers=headers):
            return Problem(status, detail, headers=headers or {})
        case TaskNotFound():
            return Problem(404, str(exc))
        case TaskConflict():
            return Problem(409, str(exc))
        case QueueFull(retry_after_s=seconds) | StoreFull(retry_after_s=seconds):
            return Problem(503, str(exc), headers={"Retry-After": str(seconds)})
        case RateLimited(retry_after_s=seconds):
            retry_after = {"Retry-After": str(seconds)}
            return Problem(429, str(exc), type=QUOTA_EXCEEDED, headers=retry_after)
        case _:
            return Problem(500, "an unexpected error occurred; quote the request_id to report it")


class ErrorMiddleware:
    """Answers every exception from the app below with problem JSON (see ``classify``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            logger.info("%s %s: the client left mid-request", scope["method"], scope["path"])
        except Exception as exc:
            problem = classify(exc, scope)
            if problem.status >= 500 and problem.status != 503:
                logger.error("%s %s failed", scope["method"], scope["path"], exc_info=exc)
            if started:
                logger.warning("%s %s broke off mid-response", scope["method"], scope["path"])
                return
            response = problem.response(scope["path"])
            response.raw_headers += scope.get(HEADERS_SCOPE_KEY, [])
            await response(scope, receive, send)


def _field_error(error: Mapping[str, Any]) -> dict[str, Any]:
    where, *path = error["loc"] or ("body",)
    detail = error["msg"]
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        path = ["task_type"]
        detail = "task_type must be one of: " + ", ".join(TASK_TYPES)
    elif error["type"] == "json_invalid":
        path = []
        detail = f"invalid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    elif where == "body" and path and path[0] in TASK_TYPES:
        path = path[1:]  # the discriminated union puts the tag into the location
    return {"in": where, "field": ".".join(map(str, path)), "type": error["type"], "detail": detail}


def _allowed_methods(scope: Scope) -> list[str]:
    # Starlette's 405 lists only the methods of the first route whose path matched, but
    # GET /tasks and POST /tasks are two routes; Allow must name every method of the path.
    routes = [route for route in scope["app"].routes if getattr(route, "methods", None)]
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _summary(errors: Sequence[Mapping[str, Any]]) -> str:
    fields = sorted({error["field"] or error["in"] for error in errors})
    return f"invalid {', '.join(fields)}"
