from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from service.errors import TaskNotFound
from service.model import Task, TaskStatus
from service.store import TaskStore
from streams.bus import EventBus
from streams.longpoll import wait_for_status_change
from tests.support import engine_of, serve, until


def setup() -> tuple[TaskStore, EventBus, Task]:
    store, bus = TaskStore(10), EventBus(buffer_size=10, subscriber_queue=10, first_id=1)
    task = Task(task_id="t", task_type="compute_sum", parameters={}, created_at=datetime.now(UTC))
    store.add(task)
    return store, bus, task


async def test_progress_does_not_wake_a_waiter_but_a_status_change_does() -> None:
    store, bus, task = setup()
    task.status = TaskStatus.PROCESSING
    waiter = asyncio.create_task(wait_for_status_change(store, bus, "t", timeout_s=10))
    await until(lambda: bus.subscriber_count == 1)
    for percent in (10, 20, 30):
        task.progress = percent
        bus.publish("task.progress", task)
    await asyncio.sleep(0)
    assert not waiter.done()
    task.status = TaskStatus.COMPLETED
    bus.publish("task.completed", task)
    assert (await waiter).status is TaskStatus.COMPLETED
    assert bus.subscriber_count == 0


async def test_other_tasks_do_not_wake_it() -> None:
    store, bus, _ = setup()
    other = Task(task_id="o", task_type="compute_sum", parameters={}, created_at=datetime.now(UTC))
    store.add(other)
    waiter = asyncio.create_task(wait_for_status_change(store, bus, "t", timeout_s=10))
    await until(lambda: bus.subscriber_count == 1)
    other.status = TaskStatus.PROCESSING
    bus.publish("task.processing", other)
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()


async def test_a_finished_task_answers_without_subscribing() -> None:
    store, bus, task = setup()
    task.status = TaskStatus.FAILED
    assert (await wait_for_status_change(store, bus, "t", timeout_s=10)) is task
    assert bus.published == 0 and bus.subscriber_count == 0


async def test_shutdown_answers_every_waiter_with_the_task_as_it_is() -> None:
    store, bus, _ = setup()
    waiters = [
        asyncio.create_task(wait_for_status_change(store, bus, "t", timeout_s=10)) for _ in range(3)
    ]
    await until(lambda: bus.subscriber_count == 3)
    bus.close()
    assert [(await w).status for w in waiters] == [TaskStatus.QUEUED] * 3


async def test_a_task_that_expires_while_waited_on_is_not_found() -> None:
    store, bus, task = setup()
    waiter = asyncio.create_task(wait_for_status_change(store, bus, "t", timeout_s=10))
    await until(lambda: bus.subscriber_count == 1)
    task.status, task.finished_at = TaskStatus.CANCELLED, datetime.now(UTC)
    store.finished(task)
    store.expire(finished_before=datetime.now(UTC))
    bus.publish("task.expired", task)
    with pytest.raises(TaskNotFound):
        await waiter


async def test_a_hundred_waiters_on_one_task_all_wake_on_its_status_change(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(work_scale=1.0, concurrency=1)
    engine = engine_of(app)
    limits = httpx.Limits(max_connections=200)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client,
    ):
        await client.post("/tasks", json={"task_type": "unstable_task"})  # holds the only worker
        queued = (await client.post("/tasks", json={"task_type": "unstable_task"})).json()
        path = f"/tasks/{queued['task_id']}"
        waiters = [
            asyncio.create_task(client.get(path, params={"wait": "true", "timeout": 10}))
            for _ in range(100)
        ]
        await until(lambda: engine.bus.subscriber_count == 100)
        assert not any(w.done() for w in waiters)

        assert (await client.delete(path)).json()["status"] == "cancelled"
        # Well inside the 10 s long-poll timeout: they were woken by the event, not the clock.
        async with asyncio.timeout(5):
            answers = await asyncio.gather(*waiters)
        assert {(a.status_code, a.json()["status"]) for a in answers} == {(200, "cancelled")}
        assert engine.bus.subscriber_count == 0
