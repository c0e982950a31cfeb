"""CORSMiddleware on its own: Starlette's CORS, with a refused preflight as problem JSON.

(Taskwire's CORS settings, TASKWIRE_CORS_ORIGINS and the headers it exposes, and the
preflight's place before the rate limit are tested in tests/api/test_app.py.)
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from middleware.accesslog import AccessLogMiddleware
from middleware.cors import CORSMiddleware
from middleware.problem import PROBLEM_JSON

UI = "http://ui.example"


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": headers,
    }


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Location": "/tasks/1"})


def tiny_app() -> Starlette:
    return Starlette(
        routes=[Route("/tasks", ok, methods=["GET", "POST"])],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=[UI],
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Content-Type"],
                expose_headers=["Location", "X-Request-ID"],
            ),
        ],
    )


async def request(method: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        return await client.request(method, "/tasks", headers=headers)


async def test_an_allowed_preflight_is_answered_by_the_middleware() -> None:
    response = await request("OPTIONS", preflight(UI))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["x-request-id"]  # answered inside the request id


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param(preflight("http://elsewhere.example"), "origin", id="origin"),
        pytest.param(preflight(UI, method="PATCH"), "method", id="method"),
        pytest.param(preflight(UI, headers="x-secret"), "headers", id="header"),
    ],
)
async def test_a_refused_preflight_is_a_problem_answer(
    headers: dict[str, str], reason: str
) -> None:
    response = await request("OPTIONS", headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["content-length"]) == len(response.content)  # not the text's
    problem = response.json()
    assert problem["detail"].startswith("Disallowed CORS ")
    assert reason in problem["detail"]
    assert problem["detail"].endswith(": this cross-origin request is refused")
    assert (problem["status"], problem["title"], problem["instance"]) == (
        400,
        "Bad Request",
        "/tasks",
    )
    assert problem["request_id"] == response.headers["x-request-id"]
    # The CORS headers Starlette chose for the refusal are kept.
    assert response.headers["vary"].startswith("Origin")
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_a_cross_origin_answer_carries_the_allowed_origin_and_exposed_headers() -> None:
    response = await request("POST", {"origin": UI})
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["access-control-allow-origin"] == UI
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"Location", "X-Request-ID"}


async def test_a_request_from_an_origin_not_allowed_gets_no_cors_headers() -> None:
    response = await request("GET", {"origin": "http://elsewhere.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_a_same_origin_request_passes_untouched() -> None:
    response = await request("GET", {})
    assert (response.status_code, response.text) == (200, "ok")
    assert not any(name.startswith("access-control-") for name in response.headers)
