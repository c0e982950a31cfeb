"""Problem details (RFC 9457): the one shape of every error answer, and an ASGI app itself."""

from __future__ import annotations

import dataclasses

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from middleware.accesslog import AccessLogMiddleware
from middleware.problem import PROBLEM_JSON, Problem
from middleware.requestid import request_id


def test_the_answer_has_every_member_and_the_request_id() -> None:
    token = request_id.set("req-7")
    try:
        response = Problem(409, "it is completed").response("/tasks/1")
    finally:
        request_id.reset(token)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON == "application/problem+json"
    assert orjson.loads(response.body) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "it is completed",
        "instance": "/tasks/1",
        "request_id": "req-7",
    }


def test_outside_a_request_the_request_id_is_a_dash() -> None:
    body = orjson.loads(Problem(500, "x").response("/").body)
    assert body["request_id"] == "-"


def test_type_headers_and_field_errors_are_carried() -> None:
    errors = [{"in": "query", "field": "limit", "type": "greater_than", "detail": "too small"}]
    problem = Problem(
        429,
        "slow down",
        type="https://example.test/quota",
        headers={"Retry-After": "3"},
        errors=errors,
    )
    response = problem.response("/tasks")
    body = orjson.loads(response.body)
    assert (body["type"], body["title"], body["errors"]) == (
        "https://example.test/quota",
        "Too Many Requests",
        errors,
    )
    assert response.headers["retry-after"] == "3"
    assert int(response.headers["content-length"]) == len(response.body)


def test_without_field_errors_there_is_no_errors_member() -> None:
    assert "errors" not in orjson.loads(Problem(404, "gone").response("/x").body)


def test_a_problem_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Problem(404, "gone").status = 500  # type: ignore[misc]


async def test_as_an_asgi_app_it_answers_with_the_request_path_and_id() -> None:
    app = Starlette(
        routes=[Mount("/", Problem(503, "full", headers={"Retry-After": "7"}))],
        middleware=[Middleware(AccessLogMiddleware)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        response = await client.post("/tasks/42/retry", headers={"x-request-id": "abc"})
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "7"
    body = response.json()
    assert (body["instance"], body["request_id"], body["title"]) == (
        "/tasks/42/retry",
        "abc",
        "Service Unavailable",
    )
