from __future__ import annotations

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from middleware.requestid import request_id
from tests.middleware.harness import handshake


async def echo_id(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(request_id.get())(scope, receive, send)


async def get(headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=AccessLogMiddleware(echo_id))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        return await client.get("/", headers=headers)


@pytest.mark.parametrize(
    "given", ["abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "svc:web/req=42@edge"]
)
async def test_a_sane_client_id_is_kept(given: str) -> None:
    response = await get({"x-request-id": given})
    assert response.headers["x-request-id"] == given == response.text


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("x" * 129, id="too-long"),
        pytest.param("has space", id="space"),
        pytest.param('quote"d', id="quote"),
        pytest.param("", id="empty"),
    ],
)
async def test_an_odd_client_id_is_replaced(given: str) -> None:
    response = await get({"x-request-id": given})
    assert response.headers["x-request-id"] != given
    assert len(response.headers["x-request-id"]) == 32 == len(response.text)


async def test_each_request_without_an_id_gets_a_new_one_and_the_id_does_not_leak() -> None:
    first, second = await get(), await get()
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert request_id.get() == "-"


async def test_the_id_is_reset_even_when_the_app_fails() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        assert request_id.get() == "abc-123"
        raise RuntimeError("broken")

    transport = httpx.ASGITransport(app=AccessLogMiddleware(fails))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        with pytest.raises(RuntimeError, match="broken"):
            await client.get("/", headers={"x-request-id": "abc-123"})
    assert request_id.get() == "-"


async def test_other_scopes_pass_straight_through_without_an_id() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(f"{scope['type']} {request_id.get()}")

    await AccessLogMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan -"]


def websocket_scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "websocket",
        "path": "/events",
        "headers": headers,
        "extensions": {"websocket.http.response": {}},
    }


async def deny_with_the_id(scope: Scope, receive: Receive, send: Send) -> None:
    # A WebSocket denial response (the ASGI extension), saying which id it saw.
    await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
    await send({"type": "websocket.http.response.body", "body": request_id.get().encode()})


async def test_a_websocket_denial_carries_the_id_the_handshake_was_served_with() -> None:
    start, body = await handshake(
        AccessLogMiddleware(deny_with_the_id), websocket_scope([(b"x-request-id", b"ws-7")])
    )
    assert start["type"] == "websocket.http.response.start"
    assert (b"x-request-id", b"ws-7") in start["headers"]
    assert body["body"] == b"ws-7"
    assert request_id.get() == "-"


async def test_a_websocket_handshake_without_an_id_gets_a_new_one() -> None:
    start, body = await handshake(
        AccessLogMiddleware(deny_with_the_id), websocket_scope([(b"x-request-id", b"bad id")])
    )
    [given] = [value for name, value in start["headers"] if name == b"x-request-id"]
    assert len(given) == 32 and given == body["body"]


async def test_other_websocket_messages_pass_untouched() -> None:
    async def accept_and_close(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept", "headers": []})
        await send({"type": "websocket.close", "code": 1000})

    sent = await handshake(AccessLogMiddleware(accept_and_close), websocket_scope([]))
    assert sent == [
        {"type": "websocket.accept", "headers": []},
        {"type": "websocket.close", "code": 1000},
    ]
