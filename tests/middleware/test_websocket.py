"""RefuseWebSocketMiddleware: a WebSocket handshake is answered with a 400 problem, not
dropped, and an ``Upgrade: websocket`` request that arrives as plain HTTP is not served as
if the client had not asked to upgrade.

On its own first, then through a real server: uvicorn ``--ws none`` (how Taskwire runs it)
and uvicorn with a WebSocket implementation, which hands the handshake to the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect

from middleware.accesslog import AccessLogMiddleware
from middleware.problem import PROBLEM_JSON
from middleware.websocket import RefuseWebSocketMiddleware
from tests.middleware.harness import Exchange, handshake, http_scope
from tests.support import FAILSAFE_S, serve

DETAIL = "WebSocket is not served here; follow events with Server-Sent Events instead"


class Inner:
    """The app below: records whether anything reached it."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"served"})


def websocket_scope(*, denial: bool) -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "headers": [(b"host", b"tw"), (b"x-request-id", b"ws-1")],
        "client": ("192.0.2.1", 40000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }


async def test_a_handshake_is_denied_with_a_400_problem_where_the_server_can_send_one() -> None:
    inner = Inner()
    app = AccessLogMiddleware(RefuseWebSocketMiddleware(inner))
    start, *bodies = await handshake(app, websocket_scope(denial=True))
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 400
    headers = dict(start["headers"])
    assert headers[b"content-type"] == PROBLEM_JSON.encode()
    assert headers[b"x-request-id"] == b"ws-1"
    assert {m["type"] for m in bodies} == {"websocket.http.response.body"}
    body = orjson.loads(b"".join(m["body"] for m in bodies))
    assert body == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": DETAIL,
        "instance": "/events",
        "request_id": "ws-1",
    }
    assert inner.reached == []


async def test_a_handshake_is_closed_with_1008_where_the_server_cannot_send_an_answer() -> None:
    inner = Inner()
    sent = await handshake(RefuseWebSocketMiddleware(inner), websocket_scope(denial=False))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": DETAIL}]
    assert inner.reached == []


async def test_the_detail_can_say_something_else() -> None:
    app = RefuseWebSocketMiddleware(Inner(), detail="no sockets; use /events")
    sent = await handshake(app, websocket_scope(denial=False))
    assert sent[0]["reason"] == "no sockets; use /events"


@pytest.mark.parametrize(
    "upgrade", [b"websocket", b"WebSocket", b" websocket "], ids=["lower", "mixed", "padded"]
)
async def test_an_http_request_asking_to_upgrade_to_websocket_is_a_400_problem(
    upgrade: bytes,
) -> None:
    inner = Inner()
    headers = [(b"connection", b"Upgrade"), (b"upgrade", upgrade)]
    answer = await Exchange().run(
        RefuseWebSocketMiddleware(inner), http_scope(path="/events", headers=headers)
    )
    assert (answer.status, answer.headers["content-type"]) == (400, PROBLEM_JSON)
    body = orjson.loads(answer.content)
    assert (body["status"], body["detail"], body["instance"]) == (400, DETAIL, "/events")
    assert inner.reached == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="no-upgrade"),
        pytest.param([(b"connection", b"Upgrade"), (b"upgrade", b"h2c")], id="upgrade-to-h2c"),
        pytest.param([(b"x-upgrade", b"websocket")], id="another-header"),
    ],
)
async def test_other_requests_pass(headers: list[tuple[bytes, bytes]]) -> None:
    inner = Inner()
    answer = await Exchange().run(RefuseWebSocketMiddleware(inner), http_scope(headers=headers))
    assert (answer.status, answer.content) == (200, b"served")
    assert inner.reached == ["http"]


async def test_other_scopes_pass_straight_through() -> None:
    inner = Inner()
    await RefuseWebSocketMiddleware(inner)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert inner.reached == ["lifespan"]


# Through a real server ---------------------------------------------------------------------


def assert_refused(status: int, headers: Any, body: bytes) -> None:
    assert status == 400
    assert headers["content-type"] == PROBLEM_JSON
    problem = orjson.loads(body)
    assert (problem["status"], problem["detail"], problem["instance"]) == (400, DETAIL, "/events")
    assert problem["request_id"] == headers["x-request-id"]
    assert len(problem["request_id"]) == 32


async def test_under_ws_none_an_upgrade_request_is_answered_400_not_streamed(
    make_app: Callable[..., FastAPI],
) -> None:
    async with serve(make_app()) as url:  # serve() runs uvicorn with ws="none"
        host, port = url.removeprefix("http://").split(":")
        async with asyncio.timeout(FAILSAFE_S):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                b"GET /events HTTP/1.1\r\nHost: tw\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = (line.split(": ", 1) for line in lines[1:] if line)
            headers = {name.lower(): value for name, value in fields}
            body = await reader.readexactly(int(headers["content-length"]))
            writer.close()
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert_refused(400, headers, body)


@pytest.fixture
def ws_server(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Lets ``serve`` run uvicorn with a WebSocket implementation (it pins ``ws="none"``)."""
    real = uvicorn.Config

    def choose(ws: str) -> None:
        def config(app: Any, **options: Any) -> uvicorn.Config:
            return real(app, **{**options, "ws": ws})

        monkeypatch.setattr("tests.support.uvicorn.Config", config)

    return choose


@pytest.mark.parametrize(
    "ws",
    [
        pytest.param(
            "websockets",
            marks=[
                pytest.mark.filterwarnings("ignore::DeprecationWarning"),
                pytest.mark.filterwarnings("ignore:The `websockets` implementation:UserWarning"),
            ],
        ),
        "websockets-sansio",
    ],
)
async def test_a_websocket_handshake_is_refused_with_a_400_problem(
    make_app: Callable[..., FastAPI], ws_server: Callable[[str], None], ws: str
) -> None:
    ws_server(ws)
    async with serve(make_app()) as url:
        address = url.replace("http://", "ws://") + "/events"
        async with asyncio.timeout(FAILSAFE_S):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(address):
                    pass
    response = refused.value.response
    assert_refused(response.status_code, response.headers, response.body)
