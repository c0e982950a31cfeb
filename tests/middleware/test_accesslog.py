"""AccessLogMiddleware on its own: one line per request, written once it has been answered.

(That Taskwire's log lines carry the request id, through ``api/logs.py``, is tested with the
whole stack in tests/api/test_app.py.)
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from middleware.requestid import request_id
from tests.middleware.harness import Exchange, http_scope, logged
from tests.support import FAILSAFE_S, serve

LINE = re.compile(r'(?P<client>\S+) "(?P<method>\S+) (?P<path>\S+)" (?P<status>\d+) \d+\.\dms')


async def created(request: Request) -> Response:
    return PlainTextResponse("made", status_code=201)


async def test_one_line_per_request_with_client_status_duration_and_request_id() -> None:
    app = Starlette(
        routes=[Route("/tasks", created, methods=["POST"])],
        middleware=[Middleware(AccessLogMiddleware)],
    )
    transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 40000))
    ids: list[str] = []

    class RequestIdOf(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            ids.append(request_id.get())
            return True

    with logged("taskwire.access", logging.INFO) as logs:
        logs.addFilter(RequestIdOf())
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            await client.post("/tasks", headers={"x-request-id": "req-1"})
            await client.get("/nope", headers={"x-request-id": "req-2"})
    first, second = logs.messages
    assert re.fullmatch(r'192\.0\.2\.9 "POST /tasks" 201 \d+\.\dms', first)
    assert re.fullmatch(r'192\.0\.2\.9 "GET /nope" 404 \d+\.\dms', second)
    assert logs.levels == {"INFO"}
    assert ids == ["req-1", "req-2"]  # logged while the request's id is still set


async def test_a_stream_is_logged_when_it_ends_not_when_it_starts() -> None:
    ending = asyncio.Event()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await ending.wait()
        await send({"type": "http.response.body", "body": b"done"})

    exchange = Exchange()
    with logged("taskwire.access", logging.INFO) as logs:
        streaming = asyncio.create_task(exchange.run(AccessLogMiddleware(stream), http_scope()))
        async with asyncio.timeout(10):
            await exchange.started.wait()
        assert logs.records == []  # answered, but still streaming
        ending.set()
        await streaming
    [line] = logs.messages
    match = LINE.fullmatch(line)
    assert match is not None and match["status"] == "200"


async def test_a_request_that_fails_is_still_logged_with_status_0_if_nothing_was_answered() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("broken")

    scope = http_scope("DELETE", "/tasks/1")
    with (
        logged("taskwire.access", logging.INFO) as logs,
        pytest.raises(RuntimeError, match="broken"),
    ):
        await Exchange().run(AccessLogMiddleware(fails), scope)
    [line] = logs.messages
    assert re.fullmatch(r'192\.0\.2\.1 "DELETE /tasks/1" 0 \d+\.\dms', line)


async def test_without_a_client_address_the_line_has_a_dash() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    with logged("taskwire.access", logging.INFO) as logs:
        await Exchange().run(AccessLogMiddleware(ok), http_scope(client=None))
    [line] = logs.messages
    assert line.startswith('- "GET /" 200 ')


async def test_nothing_is_logged_or_timed_when_info_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock_reads: list[None] = []
    monkeypatch.setattr(
        "middleware.accesslog.time.perf_counter", lambda: clock_reads.append(None) or 0.0
    )

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    exchange = Exchange()
    with logged("taskwire.access", logging.WARNING) as logs:
        await exchange.run(AccessLogMiddleware(ok), http_scope())
    assert logs.records == []
    assert clock_reads == []  # nobody asked for the duration
    assert exchange.status == 200
    assert len(exchange.headers["x-request-id"]) == 32  # the id is still given


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    with logged("taskwire.access", logging.INFO) as logs:
        await AccessLogMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"] and logs.records == []


# Values the client chose, through a real server: uvicorn decodes the path's %-escapes, so a
# request line can carry a newline or a terminal escape into the log (httpx would normalise
# the path, hence a raw socket).

FORGED_TARGET = b"/tasks/abc%0A2026-12-01T00:00:00Z%20INFO%20taskwire.access%20FORGED"


class Written(logging.StreamHandler):  # type: ignore[type-arg]
    """What a logger writes, formatted, to a string; ``emitted`` is set at each record."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__(io.StringIO())
        self.emitted = asyncio.Event()
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.emitted.set()

    @property
    def text(self) -> str:
        value: str = self.stream.getvalue()
        return value


@contextmanager
def watched(handler: logging.Handler) -> Iterator[None]:
    logger = logging.getLogger("taskwire.access")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def request_line(url: str, target: bytes) -> bytes:
    """Send ``GET target`` as it is, on a connection of its own; returns the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    async with asyncio.timeout(FAILSAFE_S):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"GET %s HTTP/1.1\r\nHost: tw\r\nConnection: close\r\n\r\n" % target)
            return await reader.read()  # until the server closes the connection
        finally:
            writer.close()


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("no", status_code=404)(scope, receive, send)


@pytest.mark.parametrize(
    ("target", "logged_target"),
    [
        pytest.param(
            FORGED_TARGET,
            "/tasks/abc\\x0a2026-12-01T00:00:00Z INFO taskwire.access FORGED",
            id="newline-forging-a-line",
        ),
        pytest.param(b"/tasks/%1b%5b31m", "/tasks/\\x1b[31m", id="terminal-escape"),
        pytest.param(b"/a%5Cx0a", "/a\\\\x0a", id="backslash-forging-an-escape"),
        pytest.param(b"/tasks?colour=%1b%5b31m", "/tasks?colour=%1b%5b31m", id="query-as-sent"),
    ],
)
async def test_the_path_and_query_are_logged_escaped(target: bytes, logged_target: str) -> None:
    handler = Written()
    with watched(handler):
        async with serve(AccessLogMiddleware(not_found)) as url:  # type: ignore[arg-type]
            answer = await request_line(url, target)
            async with asyncio.timeout(FAILSAFE_S):
                await handler.emitted.wait()
    assert answer.startswith(b"HTTP/1.1 404 ")
    [line] = handler.text.splitlines()
    assert re.fullmatch(r'127\.0\.0\.1 "GET (.*)" 404 \d+\.\dms', line)
    assert line.startswith(f'127.0.0.1 "GET {logged_target}" 404 ')
    assert not [char for char in line if unicodedata.category(char) == "Cc"]


async def test_the_method_is_logged_escaped_too() -> None:
    # uvicorn only passes methods it knows; another server, or a proxy, may pass any token.
    with logged("taskwire.access", logging.INFO) as logs:
        await Exchange().run(AccessLogMiddleware(not_found), http_scope("GE\x1b[2JT\n", "/"))
    [line] = logs.messages
    assert line.startswith('192.0.2.1 "GE\\x1b[2JT\\x0a /" 404 ')


async def read_task(request: Request) -> Response:
    return PlainTextResponse(request.path_params["task_id"])


@pytest.mark.parametrize("log_level", [logging.INFO, logging.WARNING])
async def test_each_request_is_observed_by_route_template_whether_or_not_it_is_logged(
    log_level: int,
) -> None:
    observed: list[tuple[str, str, int, float]] = []
    app = Starlette(
        routes=[Route("/tasks/{task_id}", read_task)],
        middleware=[Middleware(AccessLogMiddleware, observe=lambda *o: observed.append(o))],
    )
    logger = logging.getLogger("taskwire.access")
    level = logger.level
    logger.setLevel(log_level)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            await client.get("/tasks/abc")
            await client.post("/tasks/abc")
            await client.get("/nowhere/at/all")
    finally:
        logger.setLevel(level)
    assert [o[:3] for o in observed] == [
        ("/tasks/{task_id}", "GET", 200),  # the template, never the raw path
        ("/tasks/{task_id}", "POST", 405),
        ("unmatched", "GET", 404),
    ]
    assert all(seconds >= 0 for *_, seconds in observed)


async def test_a_request_the_client_left_before_any_answer_is_observed_with_status_0() -> None:
    observed: list[tuple[str, str, int, float]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError  # the client went away, and the server cancelled it

    guarded = AccessLogMiddleware(app, observe=lambda *o: observed.append(o))
    with pytest.raises(asyncio.CancelledError):
        await guarded(http_scope(path="/events"), Exchange().receive, Exchange().send)
    assert [o[:3] for o in observed] == [("unmatched", "GET", 0)]
