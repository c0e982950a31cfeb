from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI

from service.cleanup import Cleanup
from streams.bus import EventFilter
from tests.support import FakeClock, client_for, engine_of, finished, next_event


async def test_finished_tasks_expire_after_the_ttl_and_then_answer_404(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(result_ttl_s=600)
    async with client_for(app) as client:
        engine = engine_of(app)
        cleanup: Cleanup = app.state.cleanup
        done = (
            await client.post(
                "/tasks", json={"task_type": "compute_sum", "parameters": {"numbers": [1]}}
            )
        ).json()
        task_id = done["task_id"]
        assert (await finished(engine, task_id)).status == "completed"
        live = (
            await client.post(
                "/tasks",
                json={
                    "task_type": "compute_sum",
                    "parameters": {"numbers": [1]},
                    "priority": "low",
                },
            )
        ).json()
        clock.advance(300)
        await engine.cancel(live["task_id"])  # finishes 5 minutes after the first

        clock.advance(300)
        assert cleanup.sweep() == []  # exactly the TTL: still kept
        clock.advance(0.001)
        async with engine.bus.subscribe(EventFilter(task_id=task_id)) as events:
            assert [t.task_id for t in cleanup.sweep()] == [task_id]
            assert (await anext(events)).name == "task.expired"
        assert (await client.get(f"/tasks/{task_id}")).status_code == 404
        assert (await client.get(f"/tasks/{live['task_id']}")).status_code == 200


async def test_the_timer_sweeps_on_its_own(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app()
    async with client_for(app) as client:
        engine = engine_of(app)
        task_id = (
            await client.post(
                "/tasks", json={"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
            )
        ).json()["task_id"]
        await finished(engine, task_id)
        clock.advance(601)
        timer = Cleanup(engine.store, engine.bus, ttl_s=600, clock=clock, interval_s=0)
        running = asyncio.create_task(timer.run())
        try:
            expired = await next_event(engine.bus, "task.expired")
        finally:
            running.cancel()
        assert expired.task_id == task_id
        assert len(engine.store) == 0
