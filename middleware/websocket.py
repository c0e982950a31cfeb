"""WebSocket requests are answered, not dropped: with a problem, since none is served here."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from middleware.problem import Problem

_DETAIL = "WebSocket is not served here; follow events with Server-Sent Events instead"


class RefuseWebSocketMiddleware:
    """Answers every WebSocket handshake with a 400 problem.

    Under a server that hands WebSocket handshakes to the app, the answer is sent with the
    ASGI WebSocket Denial Response extension (a plain close where the server lacks it);
    under one that does not (uvicorn ``--ws none``), an ``Upgrade: websocket`` request
    arrives as plain HTTP and is answered the same way, instead of being served as if the
    client had not asked to upgrade.

    Args:
        detail: what the answer says (a hint to what the app serves instead).
    """

    def __init__(self, app: ASGIApp, *, detail: str = _DETAIL) -> None:
        self.app = app
        self.problem = Problem(400, detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._deny(scope, receive, send)
        elif scope["type"] == "http" and _asks_for_websocket(scope):
            await self.problem(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _deny(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            await self.problem(scope, receive, send)  # Starlette sends it as a denial
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": self.problem.detail})


def _asks_for_websocket(scope: Scope) -> bool:
    return any(
        name == b"upgrade" and value.strip().lower() == b"websocket"
        for name, value in scope["headers"]
    )
