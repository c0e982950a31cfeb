"""Fixed headers on every response, whatever answered it (``AccessLogMiddleware(headers=)``).

On its own, then as ``create_app`` wires it (``X-Content-Type-Options: nosniff``): on an
ordinary answer, a problem, a 429 from the rate limiter, a static asset and ``/docs``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from tests.middleware.harness import Exchange, handshake, http_scope
from tests.support import client_for

UNKNOWN_ID = "0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11"


async def plain(scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse("ok", headers={"X-Own": "mine"})
    await response(scope, receive, send)


async def test_the_headers_are_added_to_every_answer_with_lowercase_names() -> None:
    app = AccessLogMiddleware(
        plain, headers={"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}
    )
    exchange = await Exchange().run(app, http_scope())
    [start, body] = exchange.sent
    assert (b"x-content-type-options", b"nosniff") in start["headers"]
    assert (b"x-frame-options", b"DENY") in start["headers"]
    assert exchange.headers["x-own"] == "mine"  # the app's own headers are kept
    assert body == {"type": "http.response.body", "body": b"ok"}


async def test_each_answer_gets_the_headers_once() -> None:
    app = AccessLogMiddleware(plain, headers={"X-Content-Type-Options": "nosniff"})
    for _ in range(2):
        exchange = await Exchange().run(app, http_scope())
        [start, _] = exchange.sent
        names = [name for name, _ in start["headers"]]
        assert names.count(b"x-content-type-options") == 1


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = AccessLogMiddleware(app, headers={"X-Content-Type-Options": "nosniff"})
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_an_answer_that_starts_without_a_headers_list_gets_them_too() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    app = AccessLogMiddleware(bare, headers={"X-Content-Type-Options": "nosniff"})
    exchange = await Exchange().run(app, http_scope())
    assert exchange.headers["x-content-type-options"] == "nosniff"


async def test_a_websocket_denial_gets_the_headers_too() -> None:
    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"{}"})

    app = AccessLogMiddleware(deny, headers={"X-Content-Type-Options": "nosniff"})
    scope = {"type": "websocket", "path": "/", "headers": [], "extensions": {}}
    sent = await handshake(app, scope)
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]


# As create_app wires it ---------------------------------------------------------------------


def assert_nosniff(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


async def test_through_the_app_every_kind_of_answer_says_nosniff(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app()) as client:
        assert_nosniff(await client.get("/healthz"), 200)
        assert_nosniff(await client.get("/tasks"), 200)
        assert_nosniff(await client.get(f"/tasks/{UNKNOWN_ID}"), 404)
        assert_nosniff(await client.get("/tasks/nope"), 400)
        assert_nosniff(await client.get("/nowhere"), 404)
        assert_nosniff(await client.put("/tasks"), 405)
        assert_nosniff(await client.get("/docs"), 200)
        assert_nosniff(await client.get("/docs/assets/swagger-ui-bundle.js"), 200)
        assert_nosniff(await client.get("/docs/assets/swagger-ui.css"), 200)
        assert_nosniff(await client.get("/openapi.json"), 200)


async def test_through_the_app_a_429_says_nosniff(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(rate_limit=1)) as client:
        assert_nosniff(await client.get("/tasks"), 200)
        assert_nosniff(await client.get("/tasks"), 429)
