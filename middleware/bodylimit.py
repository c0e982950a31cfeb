"""Body limit: a request body over ``max_bytes`` is refused with 413 before it is buffered."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.problem import Problem


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI's routes turn any other error raised while they read
    # the body into a generic 400; this one they let through, to be answered here.
    def __init__(self) -> None:
        super().__init__(413)


class BodyLimitMiddleware:
    """Refuses a body by its ``Content-Length`` at once, or a chunked one as it arrives.

    The server never delivers more than a declared ``Content-Length``, so only a chunked
    body (no length declared) has to be counted while it is read.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refusal()(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracking)
        except _BodyTooLarge:
            if started:  # the app answered before it had read the whole body
                raise
            await self._refusal()(scope, receive, send)

    def _refusal(self) -> Problem:
        return Problem(413, f"the request body is larger than the {self.max_bytes}-byte limit")
