"""``/healthz``: liveness, and the tasks held in each status."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import schemas
from service.backends.memory import MemoryBackend
from service.clock import utc
from service.model import Task, TaskError, TaskStatus
from tests.support import FakeClock, backend_of, client_for, engine_of, finished

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


class Uniterable(dict[str, Any]):
    """A dict that refuses to be iterated: reading it whole would cost O(tasks held)."""

    def __iter__(self) -> Any:
        raise AssertionError("the whole store was iterated")

    keys = values = items = __iter__  # type: ignore[assignment]


async def hold_many(app: FastAPI) -> dict[str, int]:
    """Thousands of tasks in every status, made through the backend's transitions (the
    engine stopped, so none moves on its own); then the store refuses to be iterated."""
    await engine_of(app).close()
    backend = backend_of(app)
    assert isinstance(backend, MemoryBackend)
    clock = FakeClock()

    async def submitted() -> Task:
        task = Task(
            task_id=str(uuid.uuid4()),
            task_type="compute_sum",
            parameters={"numbers": [1]},
            created_at=utc(clock()),
        )
        return await backend.submit(task, planned_s=1.0)

    wanted = {"completed": 3000, "failed": 1000, "cancelled": 500, "processing": 2, "queued": 40}
    for _ in range(wanted["completed"]):
        await submitted()
        await backend.finish(await backend.claim(), TaskStatus.COMPLETED, result={"sum": 1})
    for _ in range(wanted["failed"]):
        await submitted()
        error = TaskError("TaskFailedError", "no")
        await backend.finish(await backend.claim(), TaskStatus.FAILED, error=error)
    for _ in range(wanted["cancelled"]):
        await backend.cancel((await submitted()).task_id)
    for _ in range(wanted["processing"]):
        await submitted()
        await backend.claim()
    for _ in range(wanted["queued"]):
        await submitted()
    store = backend._store
    store._tasks = Uniterable(store._tasks)
    with pytest.raises(AssertionError, match="iterated"):
        list(store)
    return wanted


async def test_health_counts_thousands_of_tasks_without_reading_them(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_tasks=5000, max_queue=100)
    async with client_for(app) as client:
        wanted = await hold_many(app)
        response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    health = response.json()
    assert {status: health[status] for status in wanted} == wanted
    assert health["tasks"] == sum(wanted.values()) == 4542
