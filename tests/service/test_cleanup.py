from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from pydantic import TypeAdapter

from service.backend import TaskQuery
from service.cleanup import Cleanup
from service.events import EventFilter
from service.tasktypes import Submission, TaskSubmission
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    backend_of,
    bus_of,
    client_for,
    engine_of,
    finished,
    next_event,
)

SUBMISSION: TypeAdapter[Submission] = TypeAdapter(TaskSubmission)
COMPUTE = {"task_type": "compute_sum", "parameters": {"numbers": [1]}}


@asynccontextmanager
async def workers_only(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app`` with its engine running but not its lifespan, so the app's own
    cleanup timer (one real second) cannot sweep behind the test's back."""
    engine = engine_of(app)
    engine.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            yield client
    finally:
        await engine.close()
        await backend_of(app).close()


async def test_finished_tasks_expire_after_the_ttl_and_then_answer_404(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(result_ttl_s=600)
    cleanup: Cleanup = app.state.cleanup
    backend = backend_of(app)
    async with workers_only(app) as client:
        first = (await client.post("/tasks", json=COMPUTE)).json()["task_id"]
        assert (await finished(backend, first)).status == "completed"
        clock.advance(300)
        later = (await client.post("/tasks", json=COMPUTE)).json()["task_id"]
        done_later = await finished(backend, later)  # finishes 5 minutes after the first
        assert done_later.status == "completed"

        clock.advance(300)
        assert await cleanup.sweep() == 0  # exactly the TTL: still kept
        assert (await client.get(f"/tasks/{first}")).status_code == 200
        clock.advance(0.001)
        async with backend.bus.subscribe() as events:
            assert await cleanup.sweep() == 1
            async with asyncio.timeout(FAILSAFE_S):
                expired = await anext(events)
            assert (expired.name, expired.task_id) == ("task.expired", first)
            assert events.drain() == []  # one event, for the one task removed
        assert (await client.get(f"/tasks/{first}")).status_code == 404
        assert (await client.get(f"/tasks/{later}")).status_code == 200
        held = [task.task_id async for page in backend.select(TaskQuery()) for task in page.tasks]
        assert held == [later]

        clock.advance(300)
        assert await cleanup.sweep() == 1
        assert (await client.get(f"/tasks/{later}")).status_code == 404


async def test_live_tasks_never_expire(make_app: Callable[..., FastAPI], clock: FakeClock) -> None:
    app = make_app(result_ttl_s=600)
    cleanup: Cleanup = app.state.cleanup
    backend = backend_of(app)
    # Not started: the task stays queued however old it grows.
    task = await engine_of(app).submit(SUBMISSION.validate_python(COMPUTE))
    clock.advance(3600)
    assert await cleanup.sweep() == 0
    assert (await backend.get(task.task_id)).status == "queued"


async def test_the_timer_sweeps_on_its_own(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app()
    async with client_for(app) as client:
        backend = backend_of(app)
        task_id = (
            await client.post(
                "/tasks", json={"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
            )
        ).json()["task_id"]
        await finished(backend, task_id)
        clock.advance(601)
        timer = Cleanup(backend, ttl_s=600, interval_s=0)
        running = asyncio.create_task(timer.run())
        try:
            expired = await next_event(bus_of(app), "task.expired", EventFilter(task_id=task_id))
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert expired.task_id == task_id
        assert sum((await backend.counts()).values()) == 0
        assert (await client.get(f"/tasks/{task_id}")).status_code == 404
