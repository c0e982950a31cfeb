"""Body limit: a request body over ``max_bytes`` is refused with 413 before it is buffered."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it reads the body
    # into a generic 400; this one it lets through to the error middleware.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than the {max_bytes}-byte limit")


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
            raise BodyTooLarge(self.max_bytes)
        if not chunked:
            await self.app(scope, receive, send)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_limited, send)
