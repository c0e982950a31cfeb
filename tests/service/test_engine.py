"""The engine's lifecycle rules, driven directly (no HTTP), with instant or blocked work."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from service.engine import Engine
from service.errors import QueueFull, StoreFull, TaskConflict, TaskNotFound
from service.model import TaskStatus
from service.queue import TaskQueue
from service.store import TaskStore
from service.tasktypes import Submission, TaskSubmission
from streams.bus import EventBus, EventFilter
from tests.support import FakeClock, finished, next_event, until

SUBMISSION: TypeAdapter[Submission] = TypeAdapter(TaskSubmission)


def submission(
    task_type: str = "compute_sum", priority: str = "normal", **parameters: Any
) -> Submission:
    defaults: dict[str, dict[str, Any]] = {"compute_sum": {"numbers": [1, 2, 3.5]}}
    params = parameters or defaults.get(task_type, {})
    return SUBMISSION.validate_python(
        {"task_type": task_type, "parameters": params, "priority": priority}
    )


def new_engine(**overrides: Any) -> Engine:
    options: dict[str, Any] = {
        "max_queue": 100,
        "max_tasks": 1000,
        "concurrency": 5,
        "work_scale": 0.0,
        "task_timeout_s": 60.0,
    }
    options.update(overrides)
    return Engine(
        store=TaskStore(options.pop("max_tasks")),
        queue=TaskQueue(options.pop("max_queue")),
        bus=EventBus(buffer_size=10_000, subscriber_queue=10_000, first_id=1),
        clock=FakeClock(),
        rng=random.Random(1),
        **options,
    )


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = new_engine()
    engine.start()
    yield engine
    await engine.close()


@pytest.fixture
async def slow_engine() -> AsyncIterator[Engine]:
    """Work takes its full base duration (5-30 s): tasks stay processing until cancelled."""
    engine = new_engine(work_scale=1.0)
    engine.start()
    yield engine
    await engine.close()


def names(engine: Engine, task_id: str) -> list[str]:
    """The task's status events, in order (progress left out)."""
    return [
        e.name for e in engine.bus._buffer if e.task_id == task_id and e.name != "task.progress"
    ]


async def test_a_task_runs_from_queued_to_completed_with_one_event_per_change(
    engine: Engine,
) -> None:
    task = engine.submit(submission())
    assert task.status is TaskStatus.QUEUED
    done = await finished(engine, task.task_id)
    assert (done.status, done.result, done.progress, done.eta_s) == (
        "completed",
        {"sum": 6.5},
        100,
        None,
    )
    assert done.created_at <= done.started_at <= done.finished_at  # type: ignore[operator]
    assert names(engine, task.task_id) == ["task.queued", "task.processing", "task.completed"]


@pytest.mark.parametrize(
    ("task_type", "parameters", "result"),
    [
        pytest.param("compute_sum", {"numbers": [1, 2, 3]}, {"sum": 6}, id="compute_sum-integral"),
        pytest.param(
            "compute_sum",
            {"numbers": [0.1, 0.2]},
            {"sum": 0.30000000000000004},
            id="compute_sum-float",
        ),
        pytest.param(
            "compute_sum",
            {"numbers": [1e304] * 10_000},
            {"sum": 1e308},
            id="compute_sum-largest-total",
        ),
        pytest.param(
            "compute_sum",
            {"numbers": [1e304, -1e304, 0.5]},
            {"sum": 0.5},
            id="compute_sum-cancelling",
        ),
        pytest.param(
            "image_processing",
            {"count": 3, "operation": "resize"},
            {"processed": 3, "operation": "resize"},
            id="image_processing",
        ),
        pytest.param(
            "find_longest_consecutive_letters",
            {"string": "aab!!!cccc1ddd"},
            {"letter": "c", "length": 4},
            id="letters",
        ),
        pytest.param(
            "find_longest_consecutive_letters",
            {"string": "1234"},
            {"letter": "", "length": 0},
            id="no-letters",
        ),
        pytest.param(
            "batch_email",
            {"recipients": ["a@example.com", "bounce.b@example.com"], "subject": "hi"},
            {"sent": 1, "failed": ["bounce.b@example.com"]},
            id="batch_email",
        ),
        pytest.param("unstable_task", {"failure_rate": 0}, {"ok": True}, id="unstable-never-fails"),
    ],
)
async def test_results(
    engine: Engine, task_type: str, parameters: dict[str, Any], result: Any
) -> None:
    task = engine.submit(submission(task_type, **parameters))
    done = await finished(engine, task.task_id)
    assert (done.status, done.result) == ("completed", result)


async def test_report_and_data_processing_results(engine: Engine) -> None:
    report = engine.submit(submission("generate_report", title="Q3", sections=2))
    data = engine.submit(submission("data_processing", rows=25_000))
    assert (await finished(engine, report.task_id)).result["report"].startswith("Q3\n==\n")
    summary = (await finished(engine, data.task_id)).result
    assert summary["rows"] == 25_000
    assert summary["min"] < summary["mean"] < summary["max"]
    assert 14 < summary["stdev"] < 16


async def test_a_task_that_raises_its_own_error_fails_with_that_type(engine: Engine) -> None:
    task = engine.submit(submission("unstable_task", failure_rate=1))
    done = await finished(engine, task.task_id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None and done.error.type == "TaskFailedError"
    assert done.result is None and done.finished_at is not None


async def test_a_task_over_its_time_limit_fails_with_timeout_error() -> None:
    engine = new_engine(work_scale=1.0, task_timeout_s=0.001)
    engine.start()
    try:
        done = await finished(engine, engine.submit(submission()).task_id)
        assert done.status is TaskStatus.FAILED
        assert done.error is not None and done.error.type == "TimeoutError"
        assert "0.001 s" in done.error.message
    finally:
        await engine.close()


async def test_a_bug_in_a_task_type_fails_the_task_and_the_worker_carries_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> object:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("service.engine.perform", broken)
    done = await finished(engine, engine.submit(submission()).task_id)
    assert done.error is not None and (done.error.type, done.error.message) == (
        "ZeroDivisionError",
        "oops",
    )
    monkeypatch.undo()
    assert (
        await finished(engine, engine.submit(submission()).task_id)
    ).status is TaskStatus.COMPLETED


async def test_at_most_concurrency_tasks_process_at_once(slow_engine: Engine) -> None:
    tasks = [slow_engine.submit(submission()) for _ in range(7)]
    await until(lambda: slow_engine.pool.running == 5)
    for _ in range(20):
        await asyncio.sleep(0)
    statuses = [t.status for t in tasks]
    assert statuses.count(TaskStatus.PROCESSING) == 5
    assert statuses[5:] == [TaskStatus.QUEUED, TaskStatus.QUEUED]
    assert len(slow_engine.queue) == 2


async def test_higher_priority_tasks_start_first() -> None:
    engine = new_engine(concurrency=1)
    order = [
        engine.submit(submission(priority=p)) for p in ("low", "normal", "high", "normal", "high")
    ]
    seen: list[str] = []
    async with engine.bus.subscribe() as events:
        engine.start()
        try:
            async with asyncio.timeout(5):
                async for event in events:
                    if event.name == "task.processing":
                        seen.append(event.task_id)
                    if len(seen) == len(order):
                        break
        finally:
            await engine.close()
    expected = [order[i].task_id for i in (2, 4, 1, 3, 0)]
    assert seen == expected


async def test_the_101st_queued_task_is_refused_with_a_retry_hint() -> None:
    engine = new_engine(max_queue=100)  # not started: everything stays queued
    for _ in range(100):
        engine.submit(submission())
    with pytest.raises(QueueFull) as refused:
        engine.submit(submission())
    assert refused.value.retry_after_s >= 1
    assert len(engine.store) == 100


async def test_a_store_full_of_live_tasks_refuses_and_finished_ones_make_room(
    engine: Engine,
) -> None:
    idle = new_engine(max_tasks=3)
    for _ in range(3):
        idle.submit(submission())
    with pytest.raises(StoreFull):
        idle.submit(submission())

    small = new_engine(max_tasks=2)
    small.start()
    try:
        first = small.submit(submission())
        await finished(small, first.task_id)
        second = small.submit(submission())
        async with small.bus.subscribe(EventFilter(task_id=first.task_id)) as watch:
            third = small.submit(submission())  # evicts the finished first task
            assert (await anext(watch)).name == "task.expired"
        with pytest.raises(TaskNotFound):
            small.store.get(first.task_id)
        assert {t.task_id for t in small.store} == {second.task_id, third.task_id}
    finally:
        await small.close()


async def test_cancel_a_queued_task_and_it_never_runs() -> None:
    engine = new_engine()
    task = engine.submit(submission())
    cancelled = await engine.cancel(task.task_id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.finished_at is not None
    assert len(engine.queue) == 0
    engine.start()
    other = engine.submit(submission())
    await finished(engine, other.task_id)
    await engine.close()
    assert task.started_at is None
    assert names(engine, task.task_id) == ["task.queued", "task.cancelled"]


async def test_cancel_a_processing_task_answers_once_it_is_cancelled(slow_engine: Engine) -> None:
    task = slow_engine.submit(submission())
    await until(lambda: task.status is TaskStatus.PROCESSING)
    cancelled = await slow_engine.cancel(task.task_id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert slow_engine.pool.running == 0
    assert names(slow_engine, task.task_id) == ["task.queued", "task.processing", "task.cancelled"]
    follow_up = slow_engine.submit(submission())  # the worker is free again
    await until(lambda: follow_up.status is TaskStatus.PROCESSING)


async def test_a_task_taken_by_a_worker_but_not_started_can_still_be_cancelled(
    engine: Engine,
) -> None:
    task = engine.submit(submission())
    for _ in range(10):  # the worker takes it; its job is created, not yet run
        await asyncio.sleep(0)
        if len(engine.queue) == 0:
            break
    cancelled = await engine.cancel(task.task_id)
    await until(lambda: engine.pool.running == 0)
    assert cancelled.status is TaskStatus.CANCELLED
    assert task.started_at is None


@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
async def test_cancel_a_finished_task_is_a_conflict_and_changes_nothing(
    engine: Engine, outcome: str
) -> None:
    rate = 1 if outcome == "failed" else 0
    task = engine.submit(submission("unstable_task", failure_rate=rate))
    if outcome == "cancelled":
        await engine.cancel(task.task_id)
    done = await finished(engine, task.task_id)
    before = (done.status, done.finished_at, len(engine.bus._buffer))
    with pytest.raises(TaskConflict):
        await engine.cancel(task.task_id)
    assert (task.status, task.finished_at, len(engine.bus._buffer)) == before


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
async def test_retry_queues_a_failed_or_cancelled_task_as_its_next_attempt(
    engine: Engine, outcome: str
) -> None:
    task = engine.submit(submission("unstable_task", failure_rate=1 if outcome == "failed" else 0))
    if outcome == "cancelled":
        await engine.cancel(task.task_id)
    await finished(engine, task.task_id)
    retried = engine.retry(task.task_id)
    assert (retried.status, retried.attempt, retried.error, retried.finished_at) == (
        "queued",
        2,
        None,
        None,
    )
    again = await finished(engine, task.task_id)
    assert again.attempt == 2 and again.status.is_finished


async def test_retry_of_a_task_that_is_not_failed_or_cancelled_is_a_conflict(
    slow_engine: Engine,
) -> None:
    task = slow_engine.submit(submission())
    with pytest.raises(TaskConflict):
        slow_engine.retry(task.task_id)
    await until(lambda: task.status is TaskStatus.PROCESSING)
    with pytest.raises(TaskConflict):
        slow_engine.retry(task.task_id)
    assert task.attempt == 1


async def test_retry_into_a_full_queue_is_refused_and_leaves_the_task_as_it_was() -> None:
    engine = new_engine(max_queue=1)
    task = engine.submit(submission())
    await engine.cancel(task.task_id)
    engine.submit(submission())
    with pytest.raises(QueueFull):
        engine.retry(task.task_id)
    assert (task.status, task.attempt) == (TaskStatus.CANCELLED, 1)


async def test_unknown_task_ids_are_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        await engine.cancel("nope")
    with pytest.raises(TaskNotFound):
        engine.retry("nope")


async def test_close_cancels_running_tasks_with_an_event() -> None:
    engine = new_engine(work_scale=1.0)
    engine.start()
    task = engine.submit(submission())
    await until(lambda: task.status is TaskStatus.PROCESSING)
    await engine.close()
    assert task.status is TaskStatus.CANCELLED
    assert names(engine, task.task_id)[-1] == "task.cancelled"


async def test_progress_events_are_throttled_to_one_per_percent_and_interval() -> None:
    now = FakeClock(0.0)
    engine = new_engine()
    engine._monotonic = now
    task = engine.submit(submission())
    report = engine._progress_reporter(task, duration_s=10.0)
    report(0.005)  # under 1%
    report(0.011)
    report(0.015)  # same percent
    now.advance(0.05)
    report(0.5)  # too soon
    now.advance(0.05)
    report(0.6)
    report(1.0)  # too soon, and 100% is reserved for completed
    progress = [e for e in engine.bus._buffer if e.name == "task.progress"]
    assert [(e.id, TaskStatus(e.status)) for e in progress] == [(2, "queued"), (3, "queued")]
    assert (task.progress, task.eta_s) == (99, 0.0)


async def test_progress_moves_with_the_work_and_eta_counts_down() -> None:
    engine = new_engine(work_scale=0.01)  # 0.05-0.3 s of work, in ticks
    engine.start()
    try:
        task = engine.submit(submission("generate_report", title="t", sections=20))
        event = await next_event(engine.bus, "task.progress", EventFilter(task_id=task.task_id))
        snapshot = orjson.loads(event.data)
        assert 0 < snapshot["progress"] < 100
        assert 0 <= snapshot["eta_s"] < 0.24
        await finished(engine, task.task_id)
    finally:
        await engine.close()
