"""CORS (only with TASKWIRE_CORS_ORIGINS): preflights, refusals as problem JSON, exposed headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from service import schemas
from tests.support import client_for

UI = "http://ui.example"


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": headers,
    }


async def test_an_allowed_preflight_is_answered_with_a_request_id_and_not_counted(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(cors_origins=[UI], rate_limit=1)) as client:
        for _ in range(3):
            response = await client.options("/tasks", headers=preflight(UI))
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == UI
            assert response.headers["x-request-id"]
        assert (await client.get("/tasks")).status_code == 200  # the one counted request


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param(preflight("http://elsewhere.example"), "origin", id="origin"),
        pytest.param(preflight(UI, method="PATCH"), "method", id="method"),
        pytest.param(preflight(UI, headers="x-secret"), "headers", id="header"),
    ],
)
async def test_a_refused_preflight_is_a_problem_answer(
    make_app: Callable[..., FastAPI], headers: dict[str, str], reason: str
) -> None:
    async with client_for(make_app(cors_origins=[UI])) as client:
        response = await client.options("/tasks", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = schemas.Problem.model_validate(response.json())
    assert reason in problem.detail and problem.instance == "/tasks"
    assert problem.request_id == response.headers["x-request-id"]


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
    assert not any(name.startswith("access-control-") for name in response.headers)
