from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from middleware.bodylimit import BodyTooLarge
from middleware.errors import ErrorMiddleware, classify
from middleware.ratelimit import QUOTA_EXCEEDED, RateLimited
from service.errors import QueueFull, StoreFull, TaskConflict, TaskNotFound


async def ok(request: object) -> Response:
    return Response()


SCOPE: Scope = {
    "type": "http",
    "method": "PUT",
    "path": "/tasks",
    "headers": [],
    "app": Starlette(
        routes=[Route("/tasks", ok, methods=["GET"]), Route("/tasks", ok, methods=["POST"])]
    ),
}

CASES: list[Any] = [
    pytest.param(
        RequestValidationError(
            [{"type": "missing", "loc": ("query", "limit"), "msg": "Field required"}]
        ),
        400,
        {},
        id="validation",
    ),
    pytest.param(
        HTTPException(400, "There was an error parsing the body"), 400, {}, id="unparsable-body"
    ),
    pytest.param(HTTPException(404), 404, {}, id="no-route"),
    pytest.param(
        HTTPException(405, headers={"Allow": "GET"}),
        405,
        {"Allow": "GET, HEAD, POST"},
        id="wrong-method",
    ),
    pytest.param(BodyTooLarge(10), 413, {}, id="body-too-large"),
    pytest.param(TaskNotFound("x"), 404, {}, id="unknown-task"),
    pytest.param(TaskConflict("it is completed"), 409, {}, id="conflict"),
    pytest.param(QueueFull(100, retry_after_s=7), 503, {"Retry-After": "7"}, id="queue-full"),
    pytest.param(StoreFull(10, retry_after_s=3), 503, {"Retry-After": "3"}, id="store-full"),
    pytest.param(RateLimited(retry_after_s=42), 429, {"Retry-After": "42"}, id="rate-limited"),
    pytest.param(ZeroDivisionError("x"), 500, {}, id="anything-else"),
]


@pytest.mark.parametrize(("exc", "status", "headers"), CASES)
def test_classification(exc: Exception, status: int, headers: dict[str, str]) -> None:
    problem = classify(exc, SCOPE)
    assert (problem.status, dict(problem.headers)) == (status, headers)
    assert problem.detail
    assert problem.type == (QUOTA_EXCEEDED if status == 429 else "about:blank")


def test_validation_errors_list_each_field_without_the_union_tag() -> None:
    exc = RequestValidationError(
        [
            {
                "type": "missing",
                "loc": ("body", "compute_sum", "parameters", "numbers"),
                "msg": "Field required",
            },
            {"type": "union_tag_invalid", "loc": ("body",), "msg": "bad tag"},
            {
                "type": "greater_than",
                "loc": ("query", "limit"),
                "msg": "Input should be greater than 0",
            },
        ]
    )
    problem = classify(exc, SCOPE)
    assert problem.errors == [
        {
            "in": "body",
            "field": "parameters.numbers",
            "type": "missing",
            "detail": "Field required",
        },
        {
            "in": "body",
            "field": "task_type",
            "type": "union_tag_invalid",
            "detail": problem.errors[1]["detail"],
        },  # type: ignore[index]
        {
            "in": "query",
            "field": "limit",
            "type": "greater_than",
            "detail": "Input should be greater than 0",
        },
    ]
    assert "compute_sum" in problem.errors[1]["detail"]  # type: ignore[index]
    assert problem.detail == "invalid limit, parameters.numbers, task_type"


async def run(app: Any) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await ErrorMiddleware(app)(dict(SCOPE), receive, send)
    return sent


async def test_before_the_response_starts_an_error_becomes_problem_json() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise TaskConflict("no")

    start, body = await run(broken)
    assert start["status"] == 409
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert b'"instance":"/tasks"' in body["body"]


async def test_once_a_stream_is_under_way_an_error_is_logged_and_the_stream_left_broken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def breaks_mid_stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[", "more_body": True})
        raise RuntimeError("lost the thread")

    logger = logging.getLogger("taskwire.errors")
    logger.addHandler(caplog.handler)
    try:
        sent = await run(breaks_mid_stream)
    finally:
        logger.removeHandler(caplog.handler)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["more_body"] is True  # no false end: the server closes the connection
    assert "lost the thread" in caplog.text and "broke off mid-response" in caplog.text


async def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await ErrorMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_a_client_that_leaves_mid_request_gets_no_answer_and_no_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()  # receive() says the client has gone

    logger = logging.getLogger("taskwire.errors")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="taskwire.errors"):
            sent = await run(reads_the_body)
    finally:
        logger.removeHandler(caplog.handler)
    assert sent == []
    assert {r.levelname for r in caplog.records} == {"INFO"}
    assert "left mid-request" in caplog.text
