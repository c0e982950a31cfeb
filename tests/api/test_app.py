"""The app ``create_app`` builds: an honest FastAPI app, with Taskwire's middleware around it.

``TaskwireAPI`` replaces FastAPI's outer layers with Taskwire's middleware. Plain ``@app.get``
routes must still work as FastAPI documents them, and every error they raise must still be
answered as Taskwire's problem JSON. Also here: how ``create_app`` wires the middleware
(each one is tested on its own in tests/middleware), and how Taskwire classifies its own
errors (``api/problems.py``, the ``classify`` given to ``ErrorMiddleware``).

No postponed annotations here: FastAPI reads the endpoints' annotations at definition time.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import schemas
from api.app import TaskwireAPI, counted_by_its_route, is_stream
from api.logs import RequestIdFilter
from api.problems import classify
from middleware.ratelimit import QUOTA_EXCEEDED
from service.errors import QueueFull, RateLimited, StoreFull, TaskConflict, TaskNotFound
from tests.middleware.harness import logged
from tests.support import FAILSAFE_S, FakeClock, client_for

UI = "http://ui.example"
GENERIC_500 = "an unexpected error occurred; quote the request_id to report it"


class Item(BaseModel):
    name: str


class Refused(Exception):
    """An error of a plain route's own, which it adds a handler for."""


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    schemas.Problem.model_validate(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


class PlainRoutes:
    """Plain FastAPI routes added to Taskwire's app, and what they saw happen."""

    def __init__(self, app: FastAPI) -> None:
        self.background_ran = asyncio.Event()
        self.dependency: list[str] = []

        @app.get("/hello")
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        @app.get("/later")
        async def later(tasks: BackgroundTasks) -> dict[str, bool]:
            tasks.add_task(self.background_ran.set)
            return {"queued": True}

        @app.get("/marked")
        def marked(response: Response) -> dict[str, bool]:  # not async: run in a thread
            response.headers["X-Marked"] = "yes"
            response.status_code = 203
            return {"marked": True}

        async def opened(request: Request) -> AsyncIterator[str]:
            self.dependency.append("opened")
            yield "resource"
            self.dependency.append("closed")

        @app.get("/with-resource")
        async def with_resource(resource: Annotated[str, Depends(opened)]) -> dict[str, str]:
            return {"resource": resource}

        @app.get("/count")
        async def count(n: Annotated[int, Query(ge=1)]) -> dict[str, int]:
            return {"n": n}

        @app.post("/items")
        async def items(item: Item) -> dict[str, str]:
            return {"name": item.name}

        @app.get("/conflict")
        async def conflict() -> None:
            raise HTTPException(409, "not now", headers={"X-Why": "busy"})

        @app.get("/bug")
        async def bug() -> None:
            raise ZeroDivisionError("division by zero")

        @app.get("/refused")
        async def refused() -> None:
            raise Refused("refused by the route")


def add_handler(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"refused": str(exc)}, status_code=418)


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app(max_body_bytes=1024)


# Plain FastAPI routes on Taskwire's app ---------------------------------------------------


async def test_create_app_builds_a_taskwire_api(app: FastAPI) -> None:
    assert isinstance(app, TaskwireAPI)


async def test_a_plain_route_returning_a_dict_answers_json(app: FastAPI) -> None:
    PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/hello")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}
    assert response.headers["x-request-id"]  # inside Taskwire's middleware


async def test_a_plain_route_runs_its_background_tasks(app: FastAPI) -> None:
    routes = PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/later")
        async with asyncio.timeout(FAILSAFE_S):
            await routes.background_ran.wait()
    assert response.json() == {"queued": True}


async def test_a_plain_route_sets_headers_and_status_through_a_response_parameter(
    app: FastAPI,
) -> None:
    PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/marked")
    assert response.status_code == 203
    assert response.headers["x-marked"] == "yes"
    assert response.json() == {"marked": True}


async def test_a_plain_routes_dependency_with_yield_is_closed_after_the_request(
    app: FastAPI,
) -> None:
    routes = PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/with-resource")
    assert response.json() == {"resource": "resource"}
    assert routes.dependency == ["opened", "closed"]


async def test_an_added_exception_handler_answers_its_exception(app: FastAPI) -> None:
    PlainRoutes(app)
    add_handler(app)
    async with client_for(app) as client:
        response = await client.get("/refused")
    assert response.status_code == 418
    assert response.json() == {"refused": "refused by the route"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("handler", [False, True], ids=["no-handler", "a-handler-added"])
async def test_an_unknown_error_in_a_plain_route_is_a_logged_500_problem(
    app: FastAPI, handler: bool
) -> None:
    PlainRoutes(app)
    if handler:
        add_handler(app)
    with logged("taskwire.errors") as logs:
        async with client_for(app) as client:
            response = await client.get("/bug")
    body = assert_problem(response, 500)
    assert body["detail"] == GENERIC_500
    [record] = logs.records
    assert record.levelno == logging.ERROR and record.getMessage() == "GET /bug failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ZeroDivisionError)


async def test_an_error_no_handler_was_added_for_is_a_500_problem(
    app: FastAPI,
) -> None:
    PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/refused")
    assert_problem(response, 500)


@pytest.mark.parametrize("handler", [False, True], ids=["no-handler", "a-handler-added"])
async def test_fastapis_own_errors_in_plain_routes_are_taskwires_problems_never_422(
    app: FastAPI, handler: bool
) -> None:
    PlainRoutes(app)
    if handler:
        add_handler(app)
    async with client_for(app) as client:
        conflict = await client.get("/conflict")
        query = await client.get("/count", params={"n": 0})
        body = await client.post("/items", json={"nom": "x"})
        not_json = await client.post(
            "/items", content=b"{", headers={"content-type": "application/json"}
        )
        too_large = await client.post("/items", json={"name": "x" * 2000})
        nowhere = await client.get("/nowhere")
        wrong_method = await client.delete("/hello")
        fine = await client.get("/count", params={"n": 3})

    assert assert_problem(conflict, 409)["detail"] == "not now"
    assert conflict.headers["x-why"] == "busy"
    assert assert_problem(query, 400)["errors"] == [
        {
            "in": "query",
            "field": "n",
            "type": "greater_than_equal",
            "detail": "Input should be greater than or equal to 1",
        }
    ]
    assert assert_problem(body, 400)["errors"][0]["in"] == "body"
    assert assert_problem(body, 400)["errors"][0]["field"] == "name"
    assert assert_problem(not_json, 400)["errors"][0]["type"] == "json_invalid"
    assert "1024-byte limit" in assert_problem(too_large, 413)["detail"]
    assert_problem(nowhere, 404)
    assert_problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "GET"  # FastAPI's own routes have no HEAD
    assert fine.json() == {"n": 3}


@pytest.mark.parametrize("handler", [False, True], ids=["no-handler", "a-handler-added"])
async def test_a_chunked_body_over_the_limit_on_a_plain_route_is_a_413_problem(
    app: FastAPI, handler: bool
) -> None:
    PlainRoutes(app)
    if handler:
        add_handler(app)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    async with client_for(app) as client:
        response = await client.post(
            "/items", content=chunks(), headers={"content-type": "application/json"}
        )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(Exception, id="Exception"),
        pytest.param(500, id="500"),
        pytest.param(HTTPStatus.INTERNAL_SERVER_ERROR, id="HTTPStatus-500"),
    ],
)
async def test_a_handler_for_every_unexpected_error_is_refused(app: FastAPI, key: Any) -> None:
    async def swallow(request: Request, exc: Exception) -> Response:
        return Response("all is well", status_code=200)

    with pytest.raises(TypeError, match=r"middleware/errors\.py"):
        app.add_exception_handler(key, swallow)
    with pytest.raises(TypeError, match=r"middleware/errors\.py"):
        app.exception_handler(key)(swallow)
    assert key not in app.exception_handlers

    PlainRoutes(app)
    async with client_for(app) as client:
        response = await client.get("/bug")
    assert_problem(response, 500)  # still answered by Taskwire, not swallowed


# The middleware as create_app wires it -----------------------------------------------------


async def test_every_answer_is_access_logged_with_its_request_id(
    make_app: Callable[..., FastAPI],
) -> None:
    with logged("taskwire.access", logging.INFO) as logs:
        logs.addFilter(RequestIdFilter())
        async with client_for(make_app(), address="192.0.2.9") as client:
            await client.get("/nope", headers={"x-request-id": "req-1"})
    [line] = [r for r in logs.records if r.name == "taskwire.access"]
    assert re.fullmatch(r'192\.0\.2\.9 "GET /nope" 404 \d+\.\dms', line.getMessage())
    assert line.request_id == "req-1"  # type: ignore[attr-defined]


async def test_without_a_rate_limit_nothing_is_counted(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(rate_limit=0)) as client:
        answers = [await client.get("/tasks") for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert not any("ratelimit" in a.headers for a in answers)


async def test_through_the_app_the_11th_request_is_a_429_problem_with_retry_after(
    make_app: Callable[..., FastAPI], clock: FakeClock, tmp_path: Path
) -> None:
    app = make_app(rate_limit=10, ui_dir=tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("//")
    async with client_for(app, address="198.51.100.4") as client:
        answers = []
        for _ in range(11):
            answers.append(await client.get("/tasks"))
            clock.advance(1)
        exempt = ("/healthz", "/metrics", "/task-types", "/openapi.json", "/docs", "/")
        for path in (*exempt, "/assets/app.js"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "ratelimit" not in response.headers, path
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    refused = answers[-1]
    assert assert_problem(refused, 429)["type"] == QUOTA_EXCEEDED
    assert refused.headers["retry-after"] == "50"
    assert refused.headers["ratelimit"] == '"per-ip";r=0;t=50'
    assert refused.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'


async def test_error_answers_are_counted_and_carry_the_fields(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(rate_limit=10)
    PlainRoutes(app)
    async with client_for(app) as client:
        not_found = await client.get("/tasks/0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11")
        bad = await client.get("/tasks?limit=0")
        bug = await client.get("/bug")
    assert not_found.status_code == 404 and not_found.headers["ratelimit"] == '"per-ip";r=9;t=60'
    assert bad.status_code == 400 and bad.headers["ratelimit"] == '"per-ip";r=8;t=60'
    assert bug.status_code == 500 and bug.headers["ratelimit"] == '"per-ip";r=7;t=60'


async def test_limiting_is_keyed_on_the_scope_client_not_forwarded_headers(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(rate_limit=1)
    async with client_for(app, address="192.0.2.1") as client:
        first = await client.get("/tasks", headers={"x-forwarded-for": "10.0.0.1"})
        second = await client.get("/tasks", headers={"x-forwarded-for": "10.0.0.2"})
    assert (first.status_code, second.status_code) == (200, 429)


async def test_a_429_and_a_500_still_carry_cors_headers(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(rate_limit=2, cors_origins=[UI])
    PlainRoutes(app)
    async with client_for(app) as client:
        bug = await client.get("/bug", headers={"origin": UI})
        await client.get("/tasks")
        refused = await client.get("/tasks", headers={"origin": UI})
    assert (bug.status_code, refused.status_code) == (500, 429)
    for response in (bug, refused):
        assert response.headers["access-control-allow-origin"] == UI
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "retry-after" in exposed and "ratelimit" in exposed


async def test_an_allowed_preflight_is_answered_with_a_request_id_and_not_counted(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(cors_origins=[UI], rate_limit=1)) as client:
        for _ in range(3):
            response = await client.options(
                "/tasks",
                headers={
                    "origin": UI,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "content-type",
                },
            )
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == UI
            assert response.headers["x-request-id"]
            assert "ratelimit" not in response.headers
        assert (await client.get("/tasks")).status_code == 200  # the one counted request
        assert (await client.get("/tasks")).status_code == 429


@pytest.mark.parametrize(
    ("method", "headers", "reason"),
    [
        pytest.param("POST", "content-type", "origin", id="origin"),
        pytest.param("PATCH", "content-type", "method", id="method"),
        pytest.param("POST", "x-secret", "headers", id="header"),
    ],
)
async def test_a_preflight_taskwire_refuses_is_a_problem_answer(
    make_app: Callable[..., FastAPI], method: str, headers: str, reason: str
) -> None:
    origin = "http://elsewhere.example" if reason == "origin" else UI
    async with client_for(make_app(cors_origins=[UI])) as client:
        response = await client.options(
            "/tasks",
            headers={
                "origin": origin,
                "access-control-request-method": method,
                "access-control-request-headers": headers,
            },
        )
    assert reason in assert_problem(response, 400)["detail"]


async def test_a_cross_origin_answer_exposes_the_headers_a_page_needs(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(cors_origins=[UI], rate_limit=5)) as client:
        response = await client.post(
            "/tasks",
            json={"task_type": "compute_sum", "parameters": {"numbers": [1]}},
            headers={"origin": UI},
        )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == UI
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"location", "ratelimit", "ratelimit-policy", "retry-after", "x-request-id"} <= exposed


async def test_without_origins_configured_there_are_no_cors_headers(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app()) as client:
        response = await client.get("/tasks", headers={"origin": UI})
        preflight = await client.options(
            "/tasks", headers={"origin": UI, "access-control-request-method": "POST"}
        )
    assert not any(name.startswith("access-control-") for name in response.headers)
    assert not any(name.startswith("access-control-") for name in preflight.headers)


# How Taskwire classifies its own errors (api/problems.py) --------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "headers"),
    [
        pytest.param(
            RequestValidationError(
                [{"type": "missing", "loc": ("query", "limit"), "msg": "Field required"}]
            ),
            400,
            {},
            id="validation",
        ),
        pytest.param(TaskNotFound("x"), 404, {}, id="unknown-task"),
        pytest.param(TaskConflict("it is completed"), 409, {}, id="conflict"),
        pytest.param(QueueFull(100, retry_after_s=7), 503, {"Retry-After": "7"}, id="queue-full"),
        pytest.param(StoreFull(10, retry_after_s=3), 503, {"Retry-After": "3"}, id="store-full"),
    ],
)
def test_classification(exc: Exception, status: int, headers: dict[str, str]) -> None:
    problem = classify(exc)
    assert problem is not None
    assert (problem.status, dict(problem.headers)) == (status, headers)
    assert problem.detail
    assert problem.type == "about:blank"


def test_the_domain_errors_message_is_the_detail() -> None:
    problem = classify(TaskNotFound("abc"))
    assert problem is not None and problem.detail == "task abc does not exist or has expired"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(ZeroDivisionError("x"), id="anything-else"),
        pytest.param(HTTPException(404), id="http-exceptions-are-the-middlewares"),
    ],
)
def test_anything_else_is_left_unclassified_a_500(exc: Exception) -> None:
    assert classify(exc) is None


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
    problem = classify(exc)
    assert problem is not None and problem.errors is not None
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
        },
        {
            "in": "query",
            "field": "limit",
            "type": "greater_than",
            "detail": "Input should be greater than 0",
        },
    ]
    assert "compute_sum" in problem.errors[1]["detail"]
    assert problem.detail == "invalid limit, parameters.numbers, task_type"


def test_invalid_json_is_one_error_for_the_whole_body() -> None:
    exc = RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", 1),
                "msg": "JSON decode error",
                "ctx": {"error": "Expecting value"},
            }
        ]
    )
    problem = classify(exc)
    assert problem is not None
    assert problem.errors == [
        {
            "in": "body",
            "field": "",
            "type": "json_invalid",
            "detail": "invalid JSON: Expecting value",
        }
    ]
    assert problem.detail == "invalid body"


# Which requests are streams, for the per-address stream cap (middleware/streamlimit.py) ---


@pytest.mark.parametrize(
    ("path", "query", "stream"),
    [
        pytest.param("/events", b"", True, id="events"),
        pytest.param("/events", b"task_id=x&status=failed", True, id="events-filtered"),
        pytest.param("/tasks/x/events", b"", True, id="a-task-s-events"),
        pytest.param("/tasks", b"watch=true", True, id="watch-true"),
        pytest.param("/tasks", b"watch=1", True, id="watch-1"),
        pytest.param("/tasks", b"watch=yes", True, id="watch-yes"),
        pytest.param("/tasks", b"watch=on", True, id="watch-on"),
        pytest.param("/tasks", b"watch=TRUE", True, id="watch-TRUE"),
        pytest.param("/tasks", b"limit=5&watch=t&status=queued", True, id="watch-among-others"),
        pytest.param("/tasks", b"watch=false", False, id="watch-false"),
        pytest.param("/tasks", b"watch=0", False, id="watch-0"),
        pytest.param("/tasks", b"watch=", False, id="watch-empty"),
        pytest.param("/tasks", b"", False, id="watch-absent"),
        pytest.param("/tasks", b"watchful=true", False, id="another-parameter"),
        pytest.param("/tasks", b"x=watch", False, id="watch-as-a-value"),
        pytest.param("/tasks/x", b"watch=true", False, id="a-task-is-not-watched"),
        pytest.param("/tasks/x", b"wait=true", False, id="long-poll"),
        pytest.param("/healthz", b"", False, id="healthz"),
        pytest.param("/tasks", b"%77atch=true", True, id="percent-encoded"),
    ],
)
def test_is_stream(path: str, query: bytes, stream: bool) -> None:
    assert is_stream({"type": "http", "path": path, "query_string": query}) is stream


def test_is_stream_agrees_with_the_route_on_repeated_watch_parameters() -> None:
    # The route reads the last value of a repeated parameter; so does is_stream.
    assert is_stream({"path": "/tasks", "query_string": b"watch=false&watch=true"}) is True
    assert is_stream({"path": "/tasks", "query_string": b"watch=true&watch=false"}) is False


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "counted_by_the_route"),
    [
        ("POST", "/tasks", b"", [], True),
        ("POST", "/tasks", b"", [(b"idempotency-key", b"k")], False),  # looked up before
        ("GET", "/tasks/some-id", b"", [], True),
        ("HEAD", "/tasks/some-id", b"", [], True),
        ("GET", "/tasks/some-id", b"wait=true", [], False),  # a long-poll
        ("GET", "/tasks/some-id", b"%77ait=true", [], False),  # any query at all
        ("GET", "/tasks/some-id/events", b"", [], False),
        ("GET", "/tasks", b"", [], False),
        ("DELETE", "/tasks/some-id", b"", [], False),
        ("POST", "/tasks/some-id/retry", b"", [], False),
    ],
)
def test_which_requests_their_route_counts_against_the_rate_limit(
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    counted_by_the_route: bool,
) -> None:
    scope = {"method": method, "path": path, "query_string": query, "headers": headers}
    assert counted_by_its_route(scope) is counted_by_the_route


def test_a_request_the_backend_counted_and_refused_is_a_429_quota_problem() -> None:
    problem = classify(RateLimited(7))
    assert problem is not None
    assert (problem.status, problem.type, problem.headers) == (
        429,
        QUOTA_EXCEEDED,
        {"Retry-After": "7"},
    )
