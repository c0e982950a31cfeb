"""``/healthz``: liveness, and the tasks held in each status."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from api import schemas
from tests.support import backend_of, finished

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}
FAIL = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}


async def submit(client: httpx.AsyncClient, body: dict[str, Any] = SUM) -> str:
    response = await client.post("/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def test_health_counts_tasks_by_status(app: FastAPI, client: httpx.AsyncClient) -> None:
    done = await submit(client)
    failed = await submit(client, FAIL)
    for task_id in (done, failed):
        await finished(backend_of(app), task_id)
    response = await client.get("/healthz")
    assert response.headers["content-type"] == "application/json"
    health = response.json()
    schemas.Health.model_validate(health)
    assert (health["status"], health["tasks"], health["completed"], health["failed"]) == (
        "ok",
        2,
        1,
        1,
    )
    assert (health["queued"], health["processing"], health["cancelled"]) == (0, 0, 0)


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    got, head = await client.get("/healthz"), await client.head("/healthz")
    assert (head.status_code, head.content) == (200, b"")
    assert got.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")
