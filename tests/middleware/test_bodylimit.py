"""BodyLimitMiddleware on its own: a body over the limit is answered 413, before it is buffered.

(Through Taskwire's app, on its routes: tests/api/routes/test_tasks.py; on a plain FastAPI
route: tests/api/test_app.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from middleware.bodylimit import BodyLimitMiddleware
from middleware.problem import PROBLEM_JSON
from tests.middleware.harness import Exchange, http_scope

LIMIT = 1024
REFUSAL = "the request body is larger than the 1024-byte limit"


class Echo:
    """The app behind the limit: answers with the size of the body it read."""

    def __init__(self) -> None:
        self.reached = 0

    async def handle(self, request: Request) -> Response:
        self.reached += 1
        return PlainTextResponse(str(len(await request.body())))


async def pass_on(request: Request, exc: Exception) -> Response:
    raise exc  # as in TaskwireAPI: Starlette's plain-text answer would preempt the middleware's


def tiny_app(echo: Echo) -> Starlette:
    return Starlette(
        routes=[Route("/upload", echo.handle, methods=["POST"])],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=LIMIT),
        ],
        exception_handlers={HTTPException: pass_on},
    )


async def post(echo: Echo, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=tiny_app(echo))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        return await client.post("/upload", **kwargs)  # type: ignore[arg-type]


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert (problem["status"], problem["detail"], problem["instance"]) == (413, REFUSAL, "/upload")
    assert problem["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(("size", "status"), [(0, 200), (LIMIT, 200), (LIMIT + 1, 413)])
async def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs(
    size: int, status: int
) -> None:
    echo = Echo()
    response = await post(echo, content=b"x" * size)
    assert response.status_code == status
    if status == 413:
        assert_refused(response)
        assert echo.reached == 0
    else:
        assert response.text == str(size) and echo.reached == 1


async def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives() -> None:
    echo = Echo()
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * 500

    response = await post(echo, content=chunks())
    assert_refused(response)
    assert echo.reached == 1  # the app began reading it
    assert sent <= 3  # refused at the third chunk, not after buffering all 100


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 256

    response = await post(Echo(), content=chunks())
    assert (response.status_code, response.text) == (200, "1024")


async def test_a_chunked_body_is_counted_in_receive_itself() -> None:
    # Whoever reads the body, the limit holds: the 3rd chunk is never handed over.
    chunks_seen: list[int] = []

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            chunks_seen.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await PlainTextResponse("read it all")(scope, receive, send)

    exchange = Exchange(body=[b"x" * 600] * 5)
    scope = http_scope("POST", "/upload", headers=[(b"transfer-encoding", b"chunked")])
    await exchange.run(BodyLimitMiddleware(reader, max_bytes=LIMIT), scope)
    assert chunks_seen == [600]
    assert exchange.status == 413 and exchange.headers["content-type"] == PROBLEM_JSON
    assert exchange.chunks_read == 2


async def test_over_the_limit_after_the_app_answered_the_error_is_left_to_the_layers_above() -> (
    None
):
    async def answers_then_reads(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await Request(scope, receive).body()

    exchange = Exchange(body=[b"x" * 600] * 3)
    scope = http_scope("POST", "/upload", headers=[(b"transfer-encoding", b"chunked")])
    with pytest.raises(HTTPException) as raised:
        await exchange.run(BodyLimitMiddleware(answers_then_reads, max_bytes=LIMIT), scope)
    assert raised.value.status_code == 413
    assert [m["type"] for m in exchange.sent] == ["http.response.start"]  # no second answer


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await BodyLimitMiddleware(app, max_bytes=1)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
