"""The engine's lifecycle rules, driven directly (no HTTP) over the memory backend, with instant
or gated work."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from service.backend import Claim, TaskQuery
from service.backends.memory import MemoryBackend
from service.clock import Clock
from service.engine import PROGRESS_BYTES_PER_STEP, Engine, progress_step
from service.errors import (
    BackendUnavailable,
    LeaseLost,
    QueueFull,
    StoreFull,
    TaskConflict,
    TaskNotFound,
)
from service.events import Event, EventFilter
from service.model import Task, TaskStatus, task_json
from service.tasktypes import Submission, TaskSubmission
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    Subscriptions,
    expect_event,
    finished,
    recording,
)

SUBMISSION: TypeAdapter[Submission] = TypeAdapter(TaskSubmission)
QUEUED, PROCESSING = TaskStatus.QUEUED, TaskStatus.PROCESSING
COMPLETED, FAILED, CANCELLED = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED


def submission(
    task_type: str = "compute_sum", priority: str = "normal", **parameters: Any
) -> Submission:
    defaults: dict[str, dict[str, Any]] = {"compute_sum": {"numbers": [1, 2, 3.5]}}
    params = parameters or defaults.get(task_type, {})
    return SUBMISSION.validate_python(
        {"task_type": task_type, "parameters": params, "priority": priority}
    )


def result_of(task: Task) -> Any:
    """A task's result as the API writes it (a completed one holds it packed: Task.pack)."""
    return orjson.loads(task_json(task))["result"]


def new_backend(clock: FakeClock, *, max_queue: int = 100, max_tasks: int = 1000) -> MemoryBackend:
    return MemoryBackend(
        max_queue=max_queue,
        max_tasks=max_tasks,
        event_buffer=10_000,
        subscriber_queue=10_000,
        clock=clock,
        monotonic=clock,
        first_event_id=1,
    )


def new_engine(
    backend: MemoryBackend,
    clock: FakeClock,
    *,
    concurrency: int = 5,
    work_scale: float = 0.0,
    task_timeout_s: float = 60.0,
    monotonic: Clock | None = None,
) -> Engine:
    return Engine(
        backend,
        concurrency=concurrency,
        work_scale=work_scale,
        task_timeout_s=task_timeout_s,
        clock=clock,
        monotonic=monotonic or clock,
        rng=random.Random(1),
    )


@asynccontextmanager
async def started(engine: Engine) -> AsyncIterator[Engine]:
    engine.start()
    try:
        yield engine
    finally:
        await engine.close()


@pytest.fixture
async def backend(clock: FakeClock) -> AsyncIterator[MemoryBackend]:
    backend = new_backend(clock)
    yield backend
    await backend.close()


@pytest.fixture
async def engine(backend: MemoryBackend, clock: FakeClock) -> AsyncIterator[Engine]:
    async with started(new_engine(backend, clock)) as engine:
        yield engine


class Gate:
    """Stands in for the work (``service.engine.perform``): every job waits at the gate until
    the test releases it, and the gate keeps the most jobs it ever held at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.inside = 0
        self.most = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def __call__(self, *args: object) -> Any:
        self.entered += 1
        self.inside += 1
        self.most = max(self.most, self.inside)
        for n, waiter in self._waiters:
            if self.entered >= n and not waiter.done():
                waiter.set_result(None)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        return {"gated": True}

    async def reached_by(self, n: int) -> None:
        """Wait until ``n`` jobs have entered the gate in all."""
        if self.entered >= n:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((n, waiter))
        try:
            async with asyncio.timeout(FAILSAFE_S):
                await waiter
        finally:
            self._waiters.remove((n, waiter))


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr("service.engine.perform", gate)
    return gate


async def history(backend: MemoryBackend) -> list[Event]:
    """Every event the backend has recorded (its ids start at 1)."""
    page = await backend.bus.history_after(0, limit=100_000)
    assert not page.resync and not page.more
    return page.events


async def names(backend: MemoryBackend, task_id: str) -> list[str]:
    """The task's status events, in order (progress left out)."""
    return [
        e.name for e in await history(backend) if e.task_id == task_id and e.name != "task.progress"
    ]


async def test_a_task_runs_from_queued_to_completed_with_one_event_per_change(
    engine: Engine, backend: MemoryBackend
) -> None:
    task = await engine.submit(submission())
    assert task.status is QUEUED
    done = await finished(backend, task.task_id)
    assert (done.status, result_of(done), done.progress, done.eta_s) == (
        "completed",
        {"sum": 6.5},
        100,
        None,
    )
    assert done.created_at <= done.started_at <= done.finished_at  # type: ignore[operator]
    assert await names(backend, task.task_id) == [
        "task.queued",
        "task.processing",
        "task.completed",
    ]
    assert engine.outcomes == Counter({("compute_sum", "completed"): 1})


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
    engine: Engine,
    backend: MemoryBackend,
    task_type: str,
    parameters: dict[str, Any],
    result: Any,
) -> None:
    task = await engine.submit(submission(task_type, **parameters))
    done = await finished(backend, task.task_id)
    assert (done.status, result_of(done)) == ("completed", result)


async def test_report_and_data_processing_results(engine: Engine, backend: MemoryBackend) -> None:
    report = await engine.submit(submission("generate_report", title="Q3", sections=2))
    data = await engine.submit(submission("data_processing", rows=25_000))
    assert result_of(await finished(backend, report.task_id))["report"].startswith("Q3\n==\n")
    summary = result_of(await finished(backend, data.task_id))
    assert summary["rows"] == 25_000
    assert summary["min"] < summary["mean"] < summary["max"]
    assert 14 < summary["stdev"] < 16


async def test_a_task_that_raises_its_own_error_fails_with_that_type(
    engine: Engine, backend: MemoryBackend
) -> None:
    task = await engine.submit(submission("unstable_task", failure_rate=1))
    done = await finished(backend, task.task_id)
    assert done.status is FAILED
    assert done.error is not None and done.error.type == "TaskFailedError"
    assert done.result is None and done.finished_at is not None
    assert engine.outcomes == Counter({("unstable_task", "failed"): 1})


async def test_a_task_over_its_time_limit_fails_with_timeout_error(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    engine = new_engine(backend, clock, work_scale=1.0, task_timeout_s=0.001)
    async with started(engine):
        done = await finished(backend, (await engine.submit(submission())).task_id)
    assert done.status is FAILED
    assert done.error is not None and done.error.type == "TimeoutError"
    assert "0.001 s" in done.error.message


async def test_a_bug_in_a_task_type_fails_the_task_and_the_worker_carries_on(
    engine: Engine, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> object:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("service.engine.perform", broken)
    done = await finished(backend, (await engine.submit(submission())).task_id)
    assert done.error is not None and (done.error.type, done.error.message) == (
        "ZeroDivisionError",
        "oops",
    )
    monkeypatch.undo()
    after = await finished(backend, (await engine.submit(submission())).task_id)
    assert after.status is COMPLETED


async def test_at_most_concurrency_tasks_process_at_once(
    engine: Engine, backend: MemoryBackend, gate: Gate
) -> None:
    async with recording(backend.bus) as rec:
        tasks = [await engine.submit(submission()) for _ in range(7)]
        await rec.until_count("task.processing", 5)
        # Five workers each wait on a gated job: nothing else can be claimed until one ends.
        counts = await backend.counts()
        assert (counts[PROCESSING], counts[QUEUED]) == (5, 2)
        assert [t.status for t in tasks] == [PROCESSING] * 5 + [QUEUED] * 2
        assert engine.pool.running == 5
        gate.release.set()
        events = await rec.until_count("task.completed", 7)
    # Over the whole run, never more than five at once, and the last two started only once
    # a task had ended and freed a worker.
    assert gate.most == 5
    started_at = [i for i, e in enumerate(events) if e.name == "task.processing"]
    first_end = next(i for i, e in enumerate(events) if e.name == "task.completed")
    assert len(started_at) == 7 and started_at[4] < first_end < started_at[5]
    assert [e.task_id for e in events if e.name == "task.processing"][5:] == [
        t.task_id for t in tasks[5:]
    ]


async def test_higher_priority_tasks_start_first(backend: MemoryBackend, clock: FakeClock) -> None:
    engine = new_engine(backend, clock, concurrency=1)
    order = [
        await engine.submit(submission(priority=p))
        for p in ("low", "normal", "high", "normal", "high")
    ]
    async with recording(backend.bus) as rec, started(engine):
        await rec.until_count("task.processing", len(order))
    seen = [e.task_id for e in rec.events if e.name == "task.processing"]
    assert seen == [order[i].task_id for i in (2, 4, 1, 3, 0)]


async def test_the_101st_queued_task_is_refused_with_a_retry_hint(clock: FakeClock) -> None:
    backend = new_backend(clock, max_queue=100)
    engine = new_engine(backend, clock)  # not started: everything stays queued
    for _ in range(100):
        await engine.submit(submission())
    last_id = backend.bus.last_id
    with pytest.raises(QueueFull) as refused:
        await engine.submit(submission())
    assert refused.value.retry_after_s >= 1
    assert sum((await backend.counts()).values()) == 100
    assert backend.bus.last_id == last_id  # and nothing was announced


async def test_a_store_full_of_live_tasks_refuses_and_finished_ones_make_room(
    clock: FakeClock,
) -> None:
    idle_backend = new_backend(clock, max_tasks=3)
    idle = new_engine(idle_backend, clock)
    for _ in range(3):
        await idle.submit(submission())
    with pytest.raises(StoreFull):
        await idle.submit(submission())

    small = new_backend(clock, max_tasks=2)
    async with started(new_engine(small, clock)) as engine:
        first = await engine.submit(submission())
        await finished(small, first.task_id)
        second = await engine.submit(submission())
        async with small.bus.subscribe(EventFilter(task_id=first.task_id)) as watch:
            third = await engine.submit(submission())  # evicts the finished first task
            async with asyncio.timeout(FAILSAFE_S):
                assert (await anext(watch)).name == "task.expired"
        with pytest.raises(TaskNotFound):
            await small.get(first.task_id)
        held = [task.task_id async for page in small.select(TaskQuery()) for task in page.tasks]
        assert set(held) == {second.task_id, third.task_id}


async def test_cancel_a_queued_task_and_it_never_runs(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    engine = new_engine(backend, clock)
    task = await engine.submit(submission())
    cancelled = await engine.cancel(task.task_id)
    assert cancelled.status is CANCELLED and cancelled.finished_at is not None
    assert (await backend.counts())[QUEUED] == 0
    async with started(engine):
        # A worker then takes the next task: the cancelled one is not in its way.
        other = await engine.submit(submission())
        await finished(backend, other.task_id)
    assert (await backend.get(task.task_id)).started_at is None
    assert await names(backend, task.task_id) == ["task.queued", "task.cancelled"]
    assert engine.outcomes[("compute_sum", "cancelled")] == 1


async def test_cancel_a_processing_task_answers_once_it_is_cancelled(
    backend: MemoryBackend, clock: FakeClock, gate: Gate
) -> None:
    async with started(new_engine(backend, clock, concurrency=1)) as engine:
        task = await engine.submit(submission())
        await gate.reached_by(1)
        cancelled = await engine.cancel(task.task_id)
        assert cancelled.status is CANCELLED and cancelled.finished_at is not None
        assert (await backend.get(task.task_id)).status is CANCELLED
        assert await names(backend, task.task_id) == [
            "task.queued",
            "task.processing",
            "task.cancelled",
        ]
        assert engine.outcomes == Counter({("compute_sum", "cancelled"): 1})
        async with expect_event(backend.bus, "task.processing") as processing:
            follow_up = await engine.submit(submission())
        # The one worker is free again, and runs only the follow-up.
        assert (await processing).task_id == follow_up.task_id
        await gate.reached_by(2)
        assert (engine.pool.running, gate.inside) == (1, 1)


async def test_a_task_claimed_but_whose_job_has_not_started_can_still_be_cancelled(
    engine: Engine, backend: MemoryBackend, gate: Gate
) -> None:
    claims = EventFilter(statuses=frozenset({PROCESSING}))
    async with backend.bus.subscribe(claims) as claimed:
        task = await engine.submit(submission())
        # This subscriber is woken by the claim itself, before the job the worker made for
        # the task has run its first line: the cancel lands in between.
        async with asyncio.timeout(FAILSAFE_S):
            assert (await anext(claimed)).task_id == task.task_id
        assert gate.entered == 0, "the job had already started: the window was missed"
        try:
            async with asyncio.timeout(FAILSAFE_S):
                cancelled = await engine.cancel(task.task_id)
        except TimeoutError:
            status = (await backend.get(task.task_id)).status
            pytest.fail(f"the cancel never answered; the task is still {status}")
    assert cancelled.status is CANCELLED
    assert (await backend.counts())[PROCESSING] == 0
    assert await names(backend, task.task_id) == [
        "task.queued",
        "task.processing",
        "task.cancelled",
    ]


@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
async def test_cancel_a_finished_task_is_a_conflict_and_changes_nothing(
    engine: Engine, backend: MemoryBackend, outcome: str
) -> None:
    rate = 1 if outcome == "failed" else 0
    task = await engine.submit(submission("unstable_task", failure_rate=rate))
    if outcome == "cancelled":
        await engine.cancel(task.task_id)
    done = await finished(backend, task.task_id)
    assert done.status == outcome
    before = (done.status, done.finished_at, backend.bus.last_id)
    with pytest.raises(TaskConflict):
        await engine.cancel(task.task_id)
    after = await backend.get(task.task_id)
    assert (after.status, after.finished_at, backend.bus.last_id) == before


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
async def test_retry_queues_a_failed_or_cancelled_task_as_its_next_attempt(
    engine: Engine, backend: MemoryBackend, outcome: str
) -> None:
    rate = 1 if outcome == "failed" else 0
    task = await engine.submit(submission("unstable_task", failure_rate=rate))
    if outcome == "cancelled":
        await engine.cancel(task.task_id)
    assert (await finished(backend, task.task_id)).status == outcome
    retried = await engine.retry(task.task_id)
    assert (retried.status, retried.attempt, retried.error, retried.finished_at) == (
        "queued",
        2,
        None,
        None,
    )
    again = await finished(backend, task.task_id)
    assert again.attempt == 2 and again.status.is_finished


async def test_retry_of_a_task_that_is_not_failed_or_cancelled_is_a_conflict(
    engine: Engine, backend: MemoryBackend, gate: Gate
) -> None:
    task = await engine.submit(submission())
    with pytest.raises(TaskConflict):
        await engine.retry(task.task_id)  # queued
    await gate.reached_by(1)
    assert (await backend.get(task.task_id)).status is PROCESSING
    with pytest.raises(TaskConflict):
        await engine.retry(task.task_id)  # processing
    assert (await backend.get(task.task_id)).attempt == 1


async def test_retry_into_a_full_queue_is_refused_and_leaves_the_task_as_it_was(
    clock: FakeClock,
) -> None:
    backend = new_backend(clock, max_queue=1)
    engine = new_engine(backend, clock)
    task = await engine.submit(submission())
    await engine.cancel(task.task_id)
    await engine.submit(submission())
    with pytest.raises(QueueFull):
        await engine.retry(task.task_id)
    kept = await backend.get(task.task_id)
    assert (kept.status, kept.attempt) == (CANCELLED, 1)


async def test_unknown_task_ids_are_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        await engine.cancel("nope")
    with pytest.raises(TaskNotFound):
        await engine.retry("nope")


async def test_close_cancels_running_tasks_with_an_event_and_leaves_queued_ones(
    backend: MemoryBackend, clock: FakeClock, gate: Gate
) -> None:
    engine = new_engine(backend, clock, concurrency=1)
    async with started(engine):
        running = await engine.submit(submission())
        waiting = await engine.submit(submission())
        await gate.reached_by(1)
    assert (await backend.get(running.task_id)).status is CANCELLED
    assert (await names(backend, running.task_id))[-1] == "task.cancelled"
    assert engine.pool.running == 0
    assert engine.outcomes == Counter({("compute_sum", "cancelled"): 1})
    assert await names(backend, waiting.task_id) == ["task.queued"]
    assert (await backend.counts())[QUEUED] == 1


async def test_progress_events_are_throttled_to_one_per_percent_and_interval(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    now = FakeClock(0.0)
    engine = new_engine(backend, clock, monotonic=now)
    task = await engine.submit(submission())
    claim = await backend.claim()
    report = engine._progress_reporter(claim, duration_s=10.0)
    await report(0.005)  # under 1%
    await report(0.011)
    await report(0.015)  # same percent
    now.advance(0.05)
    await report(0.5)  # too soon
    now.advance(0.05)
    await report(0.6)
    await report(1.0)  # too soon, and 100% is reserved for completed
    progress = [e for e in await history(backend) if e.name == "task.progress"]
    assert [(e.id, e.status) for e in progress] == [(3, PROCESSING), (4, PROCESSING)]
    snapshots = [orjson.loads(e.data) for e in progress]
    assert [(s["progress"], s["eta_s"]) for s in snapshots] == [(1, 9.9), (60, 4.0)]
    # The task holds the progress it last recorded (reports in between are not written).
    assert (task.progress, task.eta_s) == (60, 4.0)


async def test_progress_moves_with_the_work_and_eta_counts_down(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    monotonic = FakeClock(0.0)
    # 0.24 s of work, in 20 ticks of 5%.
    engine = new_engine(backend, clock, work_scale=0.01, monotonic=monotonic)
    snapshots: list[dict[str, Any]] = []
    async with started(engine):
        task = await engine.submit(submission("generate_report", title="t", sections=20))
        only_this = EventFilter(task_id=task.task_id)
        async with asyncio.timeout(FAILSAFE_S), backend.bus.subscribe(only_this) as events:
            async for event in events:
                if event.name == "task.progress":
                    snapshots.append(orjson.loads(event.data))
                    monotonic.advance(1.0)  # so the next report passes the throttle
                elif event.status.is_finished:
                    break
    assert len(snapshots) >= 2
    percents = [s["progress"] for s in snapshots]
    etas = [s["eta_s"] for s in snapshots]
    assert percents[0] > 0 and percents == sorted(set(percents)) and percents[-1] < 100
    assert 0 <= etas[-1] < etas[0] < 0.24 and etas == sorted(etas, reverse=True)
    done = await backend.get(task.task_id)
    assert (done.status, done.progress, done.eta_s) == (COMPLETED, 100, None)


async def test_a_progress_report_the_backend_cannot_take_leaves_the_task_running(
    backend: MemoryBackend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis away for a moment: the report is missed, and the task ends as its work does
    # (left to its lease, it would come back as a lost worker's, and fail the second time).
    async def unavailable(claim: Claim, *, percent: int, eta_s: float) -> None:
        raise BackendUnavailable("redis", "connection refused")

    monkeypatch.setattr(backend, "progress", unavailable)
    engine = new_engine(backend, clock, monotonic=FakeClock(0.0))
    task = await engine.submit(submission())
    claim = await backend.claim()
    await engine._progress_reporter(claim, duration_s=10.0)(0.5)
    await engine._run(claim)
    assert (await backend.get(task.task_id)).status is COMPLETED


class LeasedBackend(MemoryBackend):
    """A memory backend whose claims are leases, as on Redis: renewals are counted by task,
    and the test decides whose are refused; a release puts the task back in the queue."""

    def __init__(self, clock: FakeClock, lease_s: float) -> None:
        super().__init__(
            max_queue=10,
            max_tasks=10,
            event_buffer=100,
            subscriber_queue=100,
            clock=clock,
            monotonic=clock,
        )
        self.lease_s = lease_s
        self.renewals: Counter[str] = Counter()
        self.refused: set[str] = set()
        """Task ids whose lease another worker has taken over."""
        self.released: list[str] = []
        self._renewed = asyncio.Condition()

    async def renew(self, claim: Claim) -> None:
        task_id = claim.task.task_id
        async with self._renewed:
            self.renewals[task_id] += 1
            self._renewed.notify_all()
        if task_id in self.refused:
            raise LeaseLost(task_id)
        await super().renew(claim)

    async def renewed(self, task_id: str, times: int) -> None:
        """Wait until the task's lease has been renewed (or refused) ``times`` times in all."""
        async with asyncio.timeout(FAILSAFE_S), self._renewed:
            await self._renewed.wait_for(lambda: self.renewals[task_id] >= times)

    async def release(self, claim: Claim) -> Task:
        self.released.append(claim.task.task_id)
        return await super().release(claim)


async def test_a_running_task_s_lease_is_renewed_and_a_lost_lease_stops_it_silently(
    clock: FakeClock, gate: Gate
) -> None:
    backend = LeasedBackend(clock, lease_s=0.03)  # renewed every 10 ms of real time
    engine = new_engine(backend, clock)
    async with started(engine):
        task = await engine.submit(submission())
        await gate.reached_by(1)
        await backend.renewed(task.task_id, 1)
        job = engine.pool._jobs[task.task_id]
        backend.refused.add(task.task_id)  # another worker has taken it over
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.wait({job})  # it ends on the refusal
        # The job stopped, and wrote nothing: the task is the new holder's business.
        assert (await backend.get(task.task_id)).status is PROCESSING
        assert engine.outcomes == Counter()
        assert gate.inside == 0


async def test_every_running_task_s_lease_is_kept_and_a_lost_one_stops_only_its_job(
    clock: FakeClock, gate: Gate
) -> None:
    backend = LeasedBackend(clock, lease_s=0.03)
    engine = new_engine(backend, clock)
    async with started(engine):
        kept, taken = [await engine.submit(submission()) for _ in range(2)]
        await gate.reached_by(2)
        await backend.renewed(kept.task_id, 1)
        await backend.renewed(taken.task_id, 1)
        jobs = dict(engine.pool._jobs)
        backend.refused.add(taken.task_id)
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.wait({jobs[taken.task_id]})
        # The other job runs on, and its lease is still kept.
        assert not jobs[kept.task_id].done()
        await backend.renewed(kept.task_id, backend.renewals[kept.task_id] + 2)
        gate.release.set()
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.wait({jobs[kept.task_id]})
        assert (await backend.get(kept.task_id)).status is COMPLETED
        assert (await backend.get(taken.task_id)).status is PROCESSING
        assert engine.outcomes == Counter({("compute_sum", "completed"): 1})


class EndInFlight(LeasedBackend):
    """Holds every finish until the test lets it end, as a round trip still in flight."""

    def __init__(self, clock: FakeClock, lease_s: float) -> None:
        super().__init__(clock, lease_s)
        self.finishing: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()
        self.may_end = asyncio.Event()

    async def finish(self, claim: Claim, status: TaskStatus, **outcome: Any) -> Task:
        if not self.finishing.done():
            self.finishing.set_result(claim)
        await self.may_end.wait()
        return await super().finish(claim, status, **outcome)


async def test_a_renewal_refused_once_the_task_s_end_is_sent_leaves_the_job_to_end(
    clock: FakeClock,
) -> None:
    backend = EndInFlight(clock, lease_s=60)
    engine = new_engine(backend, clock)
    async with started(engine):
        task = await engine.submit(submission())
        async with asyncio.timeout(FAILSAFE_S):
            claim = await backend.finishing
        job = engine.pool._jobs[task.task_id]
        # The store ran the end first, so a renewal sent meanwhile (a tick of the lease
        # keeper that took the claim just before) is refused:
        backend.refused.add(task.task_id)
        await engine._renew(claim, job)
        backend.may_end.set()
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.wait({job})
        assert not job.cancelled()
        assert (await backend.get(task.task_id)).status is COMPLETED
        assert engine.outcomes == Counter({("compute_sum", "completed"): 1})


async def test_a_cancel_answers_with_the_end_it_waited_for_though_the_task_moved_on(
    engine: Engine, backend: MemoryBackend, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone retries the task (or a submit evicts it) as soon as it is cancelled: the DELETE
    # still answers the cancel it made, not the task's next state (or a 404).
    task = await engine.submit(submission())
    await gate.reached_by(1)
    read = backend.get

    async def retried_first(task_id: str, **options: Any) -> Task:
        if (await read(task_id)).status is CANCELLED:
            await engine.retry(task_id)
        return await read(task_id, **options)

    monkeypatch.setattr(backend, "get", retried_first)
    async with asyncio.timeout(FAILSAFE_S):
        cancelled = await engine.cancel(task.task_id)
    assert (cancelled.status, cancelled.attempt) == (CANCELLED, 1)


async def test_a_cancel_whose_wait_is_cut_short_by_missed_events_waits_again(
    clock: FakeClock, gate: Gate
) -> None:
    # A process that missed events (its reader fell behind the stream's trim) ends every
    # subscription, the cancel's among them, while the task is still processing: the cancel
    # must wait for the end again, not answer 409 "processing".
    backend = EndInFlight(clock, lease_s=60)
    engine = new_engine(backend, clock)
    subscriptions = Subscriptions(backend.bus)
    async with started(engine):
        task = await engine.submit(submission())
        await gate.reached_by(1)
        cancelling = asyncio.create_task(engine.cancel(task.task_id))
        async with asyncio.timeout(FAILSAFE_S):
            await backend.finishing  # the job's end (cancelled) is on its way
        backend.bus.reset()
        await subscriptions.opened(2)  # the cancel listens again
        backend.may_end.set()
        async with asyncio.timeout(FAILSAFE_S):
            cancelled = await cancelling
    assert cancelled.status is CANCELLED


async def test_closing_releases_running_tasks_to_a_backend_that_outlives_the_process(
    clock: FakeClock, gate: Gate
) -> None:
    backend = LeasedBackend(clock, lease_s=60)
    engine = new_engine(backend, clock)
    async with started(engine):
        task = await engine.submit(submission())
        await gate.reached_by(1)
    assert backend.released == [task.task_id]
    assert backend.renewals == Counter()  # a 60 s lease had no need of it yet


# Large tasks report progress in coarser steps -----------------------------------------------


@pytest.mark.parametrize(
    ("task_bytes", "step"),
    [
        pytest.param(0, 1, id="empty"),
        pytest.param(300, 1, id="small"),
        pytest.param(PROGRESS_BYTES_PER_STEP, 1, id="16KiB"),
        pytest.param(PROGRESS_BYTES_PER_STEP + 1, 2, id="16KiB+1"),
        pytest.param(2 * PROGRESS_BYTES_PER_STEP, 2, id="32KiB"),
        pytest.param(100_000, 7, id="100KB"),
        pytest.param(24 * PROGRESS_BYTES_PER_STEP + 1, 25, id="just-over-24-steps"),
        pytest.param(1_000_000, 25, id="1MB-capped"),
        pytest.param(10**9, 25, id="1GB-capped"),
    ],
)
def test_progress_step_grows_with_the_task_s_size_up_to_a_quarter(
    task_bytes: int, step: int
) -> None:
    assert PROGRESS_BYTES_PER_STEP == 16 * 1024
    assert progress_step(task_bytes) == step


def letters_task(length: int) -> Submission:
    return submission("find_longest_consecutive_letters", string="ab" * (length // 2))


async def reported(backend: MemoryBackend, clock: FakeClock, length: int) -> tuple[int, list[int]]:
    """Report every percent of a claimed task's work, each past the throttle's interval;
    returns the task's progress step and the percents that made an event."""
    monotonic = FakeClock(0.0)
    engine = new_engine(backend, clock, monotonic=monotonic)
    task = await engine.submit(letters_task(length))
    claim = await backend.claim()
    report = engine._progress_reporter(claim, duration_s=10.0)
    for percent in range(1, 101):
        monotonic.advance(1.0)
        await report((percent + 0.5) / 100)  # (the half: 0.29 * 100 is 28.999...)
    progress = [
        e for e in await history(backend) if e.name == "task.progress" and e.task_id == task.task_id
    ]
    return progress_step(len(task_json(claim.task))), [
        orjson.loads(e.data)["progress"] for e in progress
    ]


async def test_a_large_task_reports_progress_in_steps_of_its_size(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    small_step, small = await reported(backend, clock, 10)
    large_step, large = await reported(backend, clock, 100_000)
    assert (small_step, large_step) == (1, 7)
    assert small == list(range(1, 100))  # every percent: 100% is the end, not progress
    assert large == list(range(7, 100, 7))  # 14 events, not 99
    assert all(b - a >= large_step for a, b in zip([0, *large], large, strict=False))


async def test_a_large_task_run_by_the_engine_records_far_fewer_progress_events(
    backend: MemoryBackend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real (tiny) work in many ticks, on a monotonic clock that moves past the throttle's
    # interval at every reading: only the progress step holds events back.
    monkeypatch.setattr("service.tasktypes.TICK_S", 0.0001)
    ticking = FakeClock(0.0)

    def monotonic() -> float:
        ticking.advance(1.0)
        return ticking.now

    engine = new_engine(backend, clock, work_scale=0.001, monotonic=monotonic)
    async with started(engine):
        small = await engine.submit(letters_task(10))
        large = await engine.submit(letters_task(100_000))
        for task in (small, large):
            assert (await finished(backend, task.task_id)).status is COMPLETED
    events = await history(backend)

    def percents(task: Task) -> list[int]:
        return [
            orjson.loads(e.data)["progress"]
            for e in events
            if e.name == "task.progress" and e.task_id == task.task_id
        ]

    small_percents, large_percents = percents(small), percents(large)
    assert len(small_percents) >= 50  # the work reports every percent or so
    assert 0 < len(large_percents) <= 99 // 7
    steps = [b - a for a, b in zip([0, *large_percents], large_percents, strict=False)]
    assert min(steps) >= 7
