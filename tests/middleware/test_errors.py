"""ErrorMiddleware on its own: exceptions become problem JSON, classified by the ``classify``
it is given; Starlette's HTTPException it answers itself. (How Taskwire classifies its own
errors, ``api/problems.py``, is tested in tests/api/test_app.py.)"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from middleware.errors import ErrorMiddleware
from middleware.problem import PROBLEM_JSON, Problem
from tests.middleware.harness import Exchange, http_scope, logged
from tests.support import serve

GENERIC_500 = "an unexpected error occurred; quote the request_id to report it"


class Mine(Exception):
    """An exception of the app's own, which its ``classify`` knows."""


class Full(Exception):
    """Another, classified as a 503."""


class Classifier:
    """A ``classify`` that records what it was asked about."""

    def __init__(self) -> None:
        self.asked: list[Exception] = []

    def __call__(self, exc: Exception) -> Problem | None:
        self.asked.append(exc)
        match exc:
            case Mine():
                return Problem(409, f"mine: {exc}", headers={"X-Mine": "yes"})
            case Full():
                return Problem(503, "full", headers={"Retry-After": "7"})
            case _:
                return None


async def ok(request: Request) -> Response:
    return Response("ok")


async def raising(request: Request) -> Response:
    raise {
        "mine": Mine("no"),
        "full": Full(),
        "unknown": ZeroDivisionError("division by zero"),
        "unparsable": HTTPException(400, "There was an error parsing the body"),
        "teapot": HTTPException(418, "short and stout", headers={"X-Tea": "earl grey"}),
    }[request.path_params["what"]]


async def assets(scope: Scope, receive: Receive, send: Send) -> None:
    # Like StaticFiles: a mounted app that names its own methods.
    raise HTTPException(405, headers={"Allow": "GET, HEAD"})


async def pass_on(request: Request, exc: Exception) -> Response:
    raise exc  # Starlette's own handler would answer in plain text; TaskwireAPI does the same


def tiny_app(classifier: Classifier) -> Starlette:
    return Starlette(
        routes=[
            Route("/tasks", ok, methods=["GET"]),
            Route("/tasks", ok, methods=["POST"]),
            Route("/raise/{what}", raising),
            Mount("/assets", assets),
        ],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(ErrorMiddleware, classify=classifier),
        ],
        exception_handlers={HTTPException: pass_on},
    )


async def request(classifier: Classifier, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=tiny_app(classifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        return await client.request(method, path)


def assert_problem(response: httpx.Response, status: int, detail: str, path: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert (body["status"], body["detail"], body["instance"]) == (status, detail, path)
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status", "detail", "headers"),
    [
        pytest.param("GET", "/nope", 404, "nothing is served at /nope", {}, id="no-route"),
        pytest.param(
            "PUT",
            "/tasks",
            405,
            "PUT is not allowed here",
            {"allow": "GET, HEAD, POST"},  # every route of the path, not just the first
            id="wrong-method",
        ),
        pytest.param(
            "PUT",
            "/assets/app.js",
            405,
            "PUT is not allowed here",
            {"allow": "GET, HEAD"},  # a mount has no methods: the app below named them
            id="wrong-method-on-a-mount",
        ),
        pytest.param(
            "GET",
            "/raise/unparsable",
            400,
            "There was an error parsing the body",
            {},
            id="unparsable-body",
        ),
        pytest.param(
            "GET",
            "/raise/teapot",
            418,
            "short and stout",
            {"x-tea": "earl grey"},
            id="any-other-http-exception",
        ),
    ],
)
async def test_starlettes_http_exceptions_are_answered_here_without_asking_classify(
    method: str, path: str, status: int, detail: str, headers: dict[str, str]
) -> None:
    classifier = Classifier()
    response = await request(classifier, method, path)
    assert_problem(response, status, detail, path)
    assert headers.items() <= response.headers.items()
    assert classifier.asked == []


async def test_the_apps_own_exceptions_are_answered_as_classify_says() -> None:
    classifier = Classifier()
    with logged("taskwire.errors") as logs:
        response = await request(classifier, "GET", "/raise/mine")
    assert_problem(response, 409, "mine: no", "/raise/mine")
    assert response.headers["x-mine"] == "yes"
    [asked] = classifier.asked
    assert isinstance(asked, Mine) and str(asked) == "no"
    assert logs.records == []  # a client's mistake is not the service's error


async def test_an_exception_classify_does_not_know_is_a_logged_500() -> None:
    classifier = Classifier()
    with logged("taskwire.errors") as logs:
        response = await request(classifier, "GET", "/raise/unknown")
    assert_problem(response, 500, GENERIC_500, "/raise/unknown")
    assert isinstance(classifier.asked[0], ZeroDivisionError)
    [record] = logs.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "GET /raise/unknown failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ZeroDivisionError)


async def test_a_503_is_answered_with_its_headers_and_not_logged_as_an_error() -> None:
    with logged("taskwire.errors") as logs:
        response = await request(Classifier(), "GET", "/raise/full")
    assert_problem(response, 503, "full", "/raise/full")
    assert response.headers["retry-after"] == "7"
    assert logs.records == []


async def test_answers_without_errors_pass_untouched() -> None:
    classifier = Classifier()
    response = await request(classifier, "POST", "/tasks")
    assert (response.status_code, response.text) == (200, "ok")
    assert classifier.asked == []


async def breaks_mid_stream(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[", "more_body": True})
    raise RuntimeError("lost the thread")


async def test_once_a_stream_is_under_way_an_error_is_logged_and_the_stream_left_broken() -> None:
    with logged("taskwire.errors") as logs:
        exchange = await Exchange().run(
            ErrorMiddleware(breaks_mid_stream, classify=Classifier()),
            http_scope(path="/tasks"),
        )
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert exchange.sent[-1]["more_body"] is True  # no false end: the server closes the connection
    assert "GET /tasks broke off mid-response" in logs.messages
    failed = [r for r in logs.records if r.exc_info]
    assert [str(r.exc_info[1]) for r in failed if r.exc_info] == ["lost the thread"]


async def test_a_client_sees_a_stream_broken_mid_response_as_broken_not_ended() -> None:
    async def items() -> AsyncIterator[bytes]:
        yield b"["
        raise RuntimeError("lost the thread")

    async def stream(request: Request) -> Response:
        return StreamingResponse(items(), media_type="application/json")

    app = Starlette(
        routes=[Route("/stream", stream)],
        middleware=[Middleware(ErrorMiddleware, classify=Classifier())],
    )
    received: list[bytes] = []

    async def read_all(response: httpx.Response) -> None:
        async for chunk in response.aiter_bytes():
            received.append(chunk)

    with logged("taskwire.errors") as logs:
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
            client.stream("GET", "/stream") as response,
        ):
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await read_all(response)
    assert b"".join(received) == b"["
    assert "GET /stream broke off mid-response" in logs.messages


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = ErrorMiddleware(app, classify=Classifier())
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_a_client_that_leaves_mid_request_gets_no_answer_and_no_error_logged() -> None:
    classifier = Classifier()

    async def reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()  # receive() says the client has gone

    exchange = Exchange(body=())
    exchange.gone.set()
    with logged("taskwire.errors") as logs:
        await exchange.run(ErrorMiddleware(reads_the_body, classify=classifier), http_scope())
    assert exchange.sent == []
    assert logs.levels == {"INFO"}
    assert logs.messages == ["GET /: the client left mid-request"]
    assert classifier.asked == []


FORGING_PATH = "/tasks/abc\n2026-12-01T00:00:00Z INFO taskwire.access FORGED\x1b[31m"
FORGING_LOGGED = "/tasks/abc\\x0a2026-12-01T00:00:00Z INFO taskwire.access FORGED\\x1b[31m"


async def fails_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    raise ZeroDivisionError("division by zero")


async def reads_a_body_that_never_comes(scope: Scope, receive: Receive, send: Send) -> None:
    await Request(scope, receive).body()


@pytest.mark.parametrize(
    ("app", "gone", "logged_as"),
    [
        pytest.param(fails_at_once, False, "GET {} failed", id="unexpected-error"),
        pytest.param(breaks_mid_stream, False, "GET {} broke off mid-response", id="broken-stream"),
        pytest.param(
            reads_a_body_that_never_comes,
            True,
            "GET {}: the client left mid-request",
            id="client-left",
        ),
    ],
)
async def test_the_path_a_client_chose_is_logged_escaped_on_one_line(
    app: ASGIApp, gone: bool, logged_as: str
) -> None:
    exchange = Exchange(body=())
    if gone:
        exchange.gone.set()
    with logged("taskwire.errors") as logs:
        await exchange.run(
            ErrorMiddleware(app, classify=Classifier()), http_scope(path=FORGING_PATH)
        )
    assert logged_as.format(FORGING_LOGGED) in logs.messages
    assert not [m for m in logs.messages if "\n" in m or "\x1b" in m]
