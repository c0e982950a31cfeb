"""Long-polling: ``wait_for_status_change`` on a memory backend, and through a real server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from service.backends.memory import MemoryBackend
from service.errors import TaskNotFound
from service.events import Event, EventBus, Subscriber
from service.model import Task, TaskError, TaskStatus, task_json
from streams.longpoll import wait_for_status_change
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    Subscriptions,
    backend_of,
    bus_of,
    engine_of,
    serve,
)


class Tap:
    """Watches the subscriptions a bus opens: every event handed out, and how many times a
    consumer has asked for the next one. A waiter that has asked for event ``n + 1`` has
    looked at the first ``n`` and kept waiting: that is how a test knows it was not woken.
    """

    def __init__(self, bus: EventBus) -> None:
        self.given: list[Event] = []
        self.asked = 0
        self._changed = asyncio.Condition()
        subscribe = bus.subscribe

        @asynccontextmanager
        async def tapped(*args: Any, **kwargs: Any) -> AsyncIterator[_Tapped]:
            async with subscribe(*args, **kwargs) as subscriber:
                yield _Tapped(subscriber, self)

        bus.subscribe = tapped  # type: ignore[method-assign,assignment]

    async def until_asked(self, n: int) -> None:
        """Wait until the ``n``-th event has been asked for."""
        async with asyncio.timeout(FAILSAFE_S), self._changed:
            await self._changed.wait_for(lambda: self.asked >= n)

    async def _ask(self) -> None:
        async with self._changed:
            self.asked += 1
            self._changed.notify_all()


class _Tapped:
    def __init__(self, subscriber: Subscriber, tap: Tap) -> None:
        self._subscriber = subscriber
        self._tap = tap

    def __aiter__(self) -> _Tapped:
        return self

    def catch_up(self, event_id: int, task_id: str | None = None) -> None:
        self._subscriber.catch_up(event_id, task_id)

    async def __anext__(self) -> Event:
        await self._tap._ask()
        event = await anext(self._subscriber)
        self._tap.given.append(event)
        return event


@pytest.fixture
async def backend(clock: FakeClock) -> AsyncIterator[MemoryBackend]:
    backend = MemoryBackend(
        max_queue=10,
        max_tasks=10,
        event_buffer=100,
        subscriber_queue=100,
        clock=clock,
        monotonic=clock,
        first_event_id=1,
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


async def submit(backend: MemoryBackend, task_id: str) -> Task:
    task = Task(
        task_id=task_id, task_type="compute_sum", parameters={}, created_at=datetime.now(UTC)
    )
    return await backend.submit(task, planned_s=1.0)


def wait_on(backend: MemoryBackend, task_id: str, timeout_s: float = 3600) -> asyncio.Task[Task]:
    """A long-poll with a timeout no test outlives: only an event or the bus can end it."""
    return asyncio.create_task(wait_for_status_change(backend, backend.bus, task_id, timeout_s))


async def test_progress_does_not_wake_a_waiter_but_a_status_change_does(
    backend: MemoryBackend,
) -> None:
    await submit(backend, "t")
    claim = await backend.claim()
    tap = Tap(backend.bus)
    waiter = wait_on(backend, "t")
    await tap.until_asked(1)  # subscribed, read the task as processing, waiting
    for percent in (10, 20, 30):
        await backend.progress(claim, percent=percent, eta_s=1.0)
    await tap.until_asked(4)  # it looked at the three progress events and asked for more
    assert [event.name for event in tap.given] == ["task.progress"] * 3
    assert not waiter.done()
    await backend.finish(claim, TaskStatus.COMPLETED, result=6)
    async with asyncio.timeout(FAILSAFE_S):
        answer = orjson.loads(await waiter)
    assert (answer["status"], answer["progress"]) == ("completed", 100)
    assert tap.given[-1].name == "task.completed"
    assert backend.bus.subscriber_count == 0


async def test_other_tasks_do_not_wake_it(backend: MemoryBackend) -> None:
    await submit(backend, "t")
    claim = await backend.claim()
    await submit(backend, "o")
    tap = Tap(backend.bus)
    waiter = wait_on(backend, "t")
    await tap.until_asked(1)
    other = await backend.claim()  # "o" moves to processing, then ends
    await backend.finish(other, TaskStatus.FAILED, error=TaskError("TaskFailedError", "no"))
    await backend.progress(claim, percent=50, eta_s=0.5)  # then "t" reports progress
    await tap.until_asked(2)
    # The waiter was handed only its own task's progress: the other task's changes never
    # reached it, and the progress did not end the wait.
    assert [(event.name, event.task_id) for event in tap.given] == [("task.progress", "t")]
    assert not waiter.done()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert backend.bus.subscriber_count == 0


async def test_a_finished_task_answers_at_once_and_leaves_no_subscription(
    backend: MemoryBackend,
) -> None:
    task = await submit(backend, "t")
    await backend.cancel("t")
    delivered = backend.bus.delivered
    async with asyncio.timeout(FAILSAFE_S):  # the long-poll's own timeout is an hour
        answer = await wait_for_status_change(backend, backend.bus, "t", timeout_s=3600)
    assert answer == task_json(task)
    assert orjson.loads(answer)["status"] == "cancelled"
    assert backend.bus.delivered == delivered  # it answered on no event
    assert backend.bus.subscriber_count == 0


async def test_shutdown_answers_every_waiter_with_the_task_as_it_is(
    backend: MemoryBackend,
) -> None:
    await submit(backend, "t")
    subscriptions = Subscriptions(backend.bus)
    waiters = [wait_on(backend, "t") for _ in range(3)]
    await subscriptions.opened(3)
    await backend.close()
    async with asyncio.timeout(FAILSAFE_S):
        answers = await asyncio.gather(*waiters)
    assert [orjson.loads(answer)["status"] for answer in answers] == ["queued"] * 3
    assert backend.bus.subscriber_count == 0


async def test_a_waiter_answers_with_the_change_it_saw_even_if_the_task_expired_since(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    await submit(backend, "t")
    subscriptions = Subscriptions(backend.bus)
    waiter = wait_on(backend, "t")
    await subscriptions.opened(1)
    # Cancelled and expired before the waiter runs again: it answers with the cancel it saw
    # (that event's own data, not a second read, which would find nothing).
    await backend.cancel("t")
    clock.advance(2)
    assert await backend.sweep(ttl_s=1) == 1
    async with asyncio.timeout(FAILSAFE_S):
        assert orjson.loads(await waiter)["status"] == "cancelled"


async def test_a_task_gone_when_the_wait_times_out_is_not_found(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    await submit(backend, "t")
    expired = asyncio.Event()

    async def read_then_vanish(task_id: str) -> tuple[Task, int]:
        task, _ = await MemoryBackend.read(backend, task_id)
        task = dataclasses.replace(task)  # as it was read: still queued
        await backend.cancel(task_id)
        clock.advance(2)
        await backend.sweep(ttl_s=1)
        expired.set()
        return task, backend.bus.last_id  # as if read after both: the wait skips them

    backend.read = read_then_vanish  # type: ignore[method-assign]
    with pytest.raises(TaskNotFound):
        await wait_for_status_change(backend, backend.bus, "t", timeout_s=0.001)
    assert expired.is_set()


async def test_a_hundred_waiters_on_one_task_all_wake_on_its_status_change(
    make_app: Callable[..., FastAPI],
) -> None:
    # A long-poll limit of an hour: whatever answers the waiters, it is not their timeout.
    app = make_app(long_poll_max_s=3600)
    bus = bus_of(app)
    subscriptions = Subscriptions(bus)
    limits = httpx.Limits(max_connections=200)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, limits=limits, timeout=FAILSAFE_S) as client,
    ):
        await engine_of(app).close()  # no worker: the task stays queued until cancelled
        queued = (await client.post("/tasks", json={"task_type": "unstable_task"})).json()
        path = f"/tasks/{queued['task_id']}"
        waiters = [
            asyncio.create_task(client.get(path, params={"wait": "true", "timeout": 3600}))
            for _ in range(100)
        ]
        await subscriptions.opened(100)
        assert bus.subscriber_count == 100
        assert (await backend_of(app).get(queued["task_id"])).status is TaskStatus.QUEUED

        assert (await client.delete(path)).json()["status"] == "cancelled"
        async with asyncio.timeout(FAILSAFE_S):
            answers = await asyncio.gather(*waiters)
        assert {(a.status_code, a.json()["status"]) for a in answers} == {(200, "cancelled")}
        assert bus.subscriber_count == 0
