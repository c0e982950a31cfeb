"""CORS: Starlette's middleware, with a refused preflight answered as problem JSON."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import cors
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from middleware.problem import Problem

_BODY_HEADERS = frozenset({"content-length", "content-type"})


class CORSMiddleware(cors.CORSMiddleware):
    """Starlette's CORS handling, unchanged but for the answer to a preflight it refuses.

    Starlette answers that in plain text; here it is problem JSON like every other error,
    keeping the CORS headers Starlette chose for it.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        reason = bytes(response.body).decode()  # e.g. "Disallowed CORS origin, method"
        headers = {k: v for k, v in response.headers.items() if k not in _BODY_HEADERS}
        return _ProblemAnswer(
            Problem(400, f"{reason}: this cross-origin request is refused", headers=headers)
        )


class _ProblemAnswer(Response):
    # Starlette wants a Response; the problem's ``instance`` is known only when it is sent.
    def __init__(self, problem: Problem) -> None:
        super().__init__(status_code=problem.status)
        self.problem = problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.problem(scope, receive, send)
