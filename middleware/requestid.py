"""Request ids: every answer carries ``X-Request-ID``, and so does every log line of its request."""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.headers import STARTS, add_headers

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

request_id: ContextVar[str] = ContextVar("request_id", default="-")
"""The id of the request being served; ``-`` outside a request (workers, timers)."""


class RequestIdMiddleware:
    """Takes the client's ``X-Request-ID`` if it is short and plain, else makes one up (for
    WebSocket handshakes too, whose refusals carry it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        # 32 random hex digits, like uuid4().hex: an id must be unique, not secret, so no
        # syscall for entropy and no UUID object on every request.
        sane = given is not None and _SANE.fullmatch(given)
        rid = given if sane and given is not None else b"%032x" % getrandbits(128)
        token = request_id.set(rid.decode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] in STARTS:
                add_headers(message, ((HEADER, rid),))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
