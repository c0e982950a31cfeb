"""Problem details (RFC 9457): the one shape of every error answer, ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from middleware.requestid import request_id

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class Problem:
    """What an error answer says. It is an ASGI app: the ``instance`` is the request's path.

    ``errors`` lists each invalid field of a validation failure.
    """

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.response(scope["path"])(scope, receive, send)
