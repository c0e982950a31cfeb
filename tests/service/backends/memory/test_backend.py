"""What the memory backend does beyond the contract every backend keeps (that is
tests/service/backends/test_conformance.py): its eviction, retry hints, fencing of stale
claims, counts kept as tasks move, and its wiring."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from fastapi import FastAPI

from service.backend import Claim, TaskQuery
from service.backends import open_backend
from service.backends.memory import MemoryBackend
from service.backends.memory.backend import SWEEP_BATCH
from service.backends.memory.ratelimit import SlidingWindowCounter
from service.clock import utc
from service.errors import LeaseLost, QueueFull, StoreFull
from service.events import HistoryPage, Subscriber
from service.model import Priority, Task, TaskError, TaskStatus, task_json
from service.settings import Settings
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    Subscriptions,
    backend_of,
    bus_of,
    recording,
    serve,
    sse,
)

QUEUED, PROCESSING = TaskStatus.QUEUED, TaskStatus.PROCESSING
COMPLETED, FAILED, CANCELLED = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED


def new_backend(clock: FakeClock, **limits: int) -> MemoryBackend:
    options = {"max_queue": 10, "max_tasks": 100, "event_buffer": 1000, "subscriber_queue": 1000}
    return MemoryBackend(**{**options, **limits}, clock=clock, monotonic=clock, first_event_id=1)


@pytest.fixture
async def memory(clock: FakeClock) -> AsyncIterator[MemoryBackend]:
    backend = new_backend(clock)
    yield backend
    await backend.close()


def new_task(clock: FakeClock, priority: Priority = "normal") -> Task:
    return Task(
        task_id=str(uuid.uuid4()),
        task_type="compute_sum",
        priority=priority,
        parameters={"numbers": [1.0]},
        created_at=utc(clock()),
    )


async def submit(backend: MemoryBackend, clock: FakeClock, planned_s: float = 8.0) -> Task:
    return await backend.submit(new_task(clock), planned_s=planned_s)


async def claim(backend: MemoryBackend) -> Claim:
    async with asyncio.timeout(FAILSAFE_S):
        return await backend.claim()


async def held(backend: MemoryBackend) -> list[Task]:
    return [task async for page in backend.select(TaskQuery()) for task in page.tasks]


async def recount(backend: MemoryBackend) -> Counter[TaskStatus]:
    """The counts by status, counted the slow way."""
    counts = Counter(dict.fromkeys(TaskStatus, 0))
    counts.update(task.status for task in await held(backend))
    return counts


# Eviction


async def test_a_full_store_announces_each_evicted_task_before_queueing_the_new_one(
    clock: FakeClock,
) -> None:
    backend = new_backend(clock, max_tasks=2)
    first, second = await submit(backend, clock), await submit(backend, clock)
    claimed = await claim(backend)
    await backend.finish(claimed, COMPLETED, result={"sum": 1})
    async with recording(backend.bus) as rec:
        third = await submit(backend, clock)
        events = await rec.until_count("task.queued", 1)
    assert [(e.name, e.task_id) for e in events] == [
        ("task.expired", first.task_id),
        ("task.queued", third.task_id),
    ]
    assert orjson.loads(events[0].data)["status"] == "completed"  # as it was when it went
    assert {task.task_id for task in await held(backend)} == {second.task_id, third.task_id}
    # Nothing is kept for the evicted task.
    assert set(backend._planned_s) == {second.task_id, third.task_id}
    assert await backend.counts() == await recount(backend)


# Retry hints


async def test_a_full_queue_hints_at_the_soonest_expected_end_of_a_running_task(
    clock: FakeClock,
) -> None:
    backend = new_backend(clock, max_queue=1)

    async def hint() -> int:
        with pytest.raises(QueueFull) as refused:
            await submit(backend, clock)
        return refused.value.retry_after_s

    await submit(backend, clock)
    assert await hint() == 1  # nothing running to go by: a second
    slow = await claim(backend)  # planned 8.0 s
    await submit(backend, clock, planned_s=2.2)
    fast = await claim(backend)
    await submit(backend, clock)  # fills the queue again
    assert await hint() == 3  # ceil(2.2)
    await backend.progress(fast, percent=10, eta_s=4.1)
    assert await hint() == 5  # the latest eta counts
    await backend.finish(fast, FAILED, error=TaskError("TaskFailedError", "no"))
    assert await hint() == 8  # only the slow one is left running
    with pytest.raises(QueueFull) as retry_refused:
        await backend.retry(fast.task.task_id)
    assert retry_refused.value.retry_after_s == 8
    await backend.progress(slow, percent=99, eta_s=0.3)
    assert await hint() == 1  # never under a second


async def test_a_store_full_of_live_tasks_hints_too(clock: FakeClock) -> None:
    backend = new_backend(clock, max_tasks=2)
    await submit(backend, clock, planned_s=5.5)
    await submit(backend, clock)
    await claim(backend)
    with pytest.raises(StoreFull) as refused:
        await submit(backend, clock)
    assert refused.value.retry_after_s == 6


# Fencing: only the live claim may write


async def test_a_claim_from_an_earlier_attempt_is_refused_and_changes_nothing(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    task = await submit(memory, clock)
    first = await claim(memory)
    await memory.finish(first, FAILED, error=TaskError("TaskFailedError", "no"))
    await memory.retry(task.task_id)
    second = await claim(memory)
    assert second.token != first.token
    last_id = memory.bus.last_id
    for write in (
        memory.progress(first, percent=50, eta_s=1.0),
        memory.renew(first),
        memory.finish(first, COMPLETED, result="stale"),
    ):
        with pytest.raises(LeaseLost) as lost:
            await write
        assert lost.value.task_id == task.task_id
    now = await memory.get(task.task_id)
    assert (now.status, now.attempt, now.progress, now.result) == (PROCESSING, 2, 0, None)
    assert memory.bus.last_id == last_id  # and nothing was recorded
    await memory.renew(second)  # the live claim still holds
    assert (await memory.finish(second, COMPLETED, result=1)).status is COMPLETED


async def test_a_claim_the_backend_did_not_give_is_refused(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    await submit(memory, clock)
    given = await claim(memory)
    forged = Claim(given.task, "not-the-token")
    with pytest.raises(LeaseLost):
        await memory.finish(forged, COMPLETED, result=1)
    assert (await memory.get(given.task.task_id)).status is PROCESSING


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(QUEUED, None, id="queued"),
        pytest.param(PROCESSING, None, id="processing"),
        pytest.param(FAILED, None, id="failed-without-an-error"),
    ],
)
async def test_a_claim_cannot_end_as_anything_else_and_still_holds_after_trying(
    memory: MemoryBackend, clock: FakeClock, status: TaskStatus, error: TaskError | None
) -> None:
    await submit(memory, clock)
    claimed = await claim(memory)
    last_id = memory.bus.last_id
    with pytest.raises(ValueError, match="cannot end"):
        await memory.finish(claimed, status, error=error)
    assert (await memory.get(claimed.task.task_id)).status is PROCESSING
    assert memory.bus.last_id == last_id
    assert (await memory.finish(claimed, CANCELLED)).status is CANCELLED


async def test_a_claim_lives_as_long_as_the_process(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    assert memory.lease_s is None
    await submit(memory, clock)
    claimed = await claim(memory)
    clock.advance(10 * 24 * 3600)
    assert await memory.sweep(ttl_s=1) == 0  # a sweep has no lost claims to take back
    await memory.renew(claimed)
    assert (await memory.finish(claimed, COMPLETED, result=1)).status is COMPLETED


# Counts


async def test_a_completed_task_keeps_its_parameters_as_json_and_reads_the_same(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    task = await submit(memory, clock)
    failed_claim = await claim(memory)
    await memory.finish(failed_claim, FAILED, error=TaskError("E", "m"))
    assert task.parameters == {"numbers": [1.0]}  # it may be retried: still a dict
    await memory.retry(task.task_id)
    completed_claim = await claim(memory)
    before = task_json(task).replace(b'"processing"', b'"completed"')
    await memory.finish(completed_claim, COMPLETED, result={"sum": 1.0})
    assert isinstance(task.parameters, orjson.Fragment)
    assert isinstance(task.result, orjson.Fragment)
    assert orjson.loads(task_json(task))["parameters"] == {"numbers": [1.0]}
    written = orjson.loads(task_json(await memory.get(task.task_id)))
    assert written == {**orjson.loads(before), **{k: written[k] for k in CHANGED_BY_FINISH}}
    events = await memory.task_events(task.task_id)
    assert orjson.loads(events[-1].data)["parameters"] == {"numbers": [1.0]}


CHANGED_BY_FINISH = ("progress", "eta_s", "result", "finished_at")


async def test_counts_are_kept_as_tasks_move_not_counted_when_read(
    clock: FakeClock,
) -> None:
    backend = new_backend(clock, max_tasks=4)
    expected: Counter[TaskStatus] = Counter(dict.fromkeys(TaskStatus, 0))

    async def check(**moved: int) -> None:
        for name, delta in moved.items():
            expected[TaskStatus(name)] += delta
        counts = await backend.counts()
        assert counts == expected
        assert counts == await recount(backend)

    tasks = [await submit(backend, clock) for _ in range(4)]
    await check(queued=4)
    claims = [await claim(backend) for _ in range(3)]
    await check(queued=-3, processing=3)
    await backend.finish(claims[0], COMPLETED, result=1)
    await backend.finish(claims[1], FAILED, error=TaskError("TaskFailedError", "no"))
    await check(processing=-2, completed=1, failed=1)
    await backend.cancel(tasks[3].task_id)  # queued: cancelled at once
    await check(queued=-1, cancelled=1)
    await backend.cancel(tasks[2].task_id)  # processing: left to its worker
    await check()
    await backend.finish(claims[2], CANCELLED)
    await check(processing=-1, cancelled=1)
    await backend.retry(tasks[1].task_id)
    await check(failed=-1, queued=1)
    await submit(backend, clock)  # evicts the first to finish: the completed one
    await check(completed=-1, queued=1)
    clock.advance(601)
    assert await backend.sweep(ttl_s=600) == 2  # both cancelled ones
    await check(cancelled=-2)
    assert set(await backend.counts()) == set(TaskStatus)


# Lists and events


async def test_a_selection_is_taken_when_asked_for_not_when_read(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    empty = [page async for page in memory.select(TaskQuery())]
    assert [list(page.tasks) for page in empty] == [[]]
    first = await submit(memory, clock)
    as_of = memory.bus.last_id
    selection = memory.select(TaskQuery())
    await submit(memory, clock)  # after the selection was taken
    pages = [page async for page in selection]
    assert [[t.task_id for t in page.tasks] for page in pages] == [[first.task_id]]
    assert pages[0].as_of == as_of  # the events it shows: up to the one before the second


async def test_event_ids_start_at_the_first_event_id(clock: FakeClock) -> None:
    backend = MemoryBackend(
        max_queue=1,
        max_tasks=1,
        event_buffer=10,
        subscriber_queue=10,
        clock=clock,
        monotonic=clock,
        first_event_id=500,
    )
    assert backend.bus.last_id == 499
    async with recording(backend.bus) as rec:
        await submit(backend, clock)
        events = await rec.until_count("task.queued", 1)
    assert [e.id for e in events] == [500]
    assert backend.bus.last_id == 500
    assert await backend.bus.history_after(499) == HistoryPage(events, 500, more=False)


async def test_by_default_event_ids_follow_the_time_so_a_restart_counts_on(
    clock: FakeClock,
) -> None:
    earlier = MemoryBackend(max_queue=1, max_tasks=1, event_buffer=1, subscriber_queue=1)
    await earlier.submit(new_task(clock), planned_s=1.0)
    later = MemoryBackend(max_queue=1, max_tasks=1, event_buffer=1, subscriber_queue=1)
    assert later.bus.last_id >= earlier.bus.last_id


async def test_close_ends_every_subscription_and_keeps_the_state(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    task = await submit(memory, clock)
    async with memory.bus.subscribe() as subscriber:
        await memory.close()
        async with asyncio.timeout(FAILSAFE_S):
            assert [e async for e in subscriber] == []
    assert (await memory.get(task.task_id)).status is QUEUED


# Wiring


async def test_the_rate_counter_runs_on_the_monotonic_clock(clock: FakeClock) -> None:
    monotonic = FakeClock(0.0)
    backend = MemoryBackend(
        max_queue=1,
        max_tasks=1,
        event_buffer=1,
        subscriber_queue=1,
        clock=clock,
        monotonic=monotonic,
    )
    counter = backend.rate_counter(limit=1, window_s=60)
    assert isinstance(counter, SlidingWindowCounter)
    assert (counter.limit, counter.window_s) == (1, 60)
    assert (await counter.hit("a"))[0]
    clock.advance(120)  # wall-clock time does not free the slot
    assert await counter.hit("a") == (False, 0, 60)
    monotonic.advance(60)
    assert (await counter.hit("a"))[0]


async def test_open_backend_builds_a_memory_backend_from_the_settings(clock: FakeClock) -> None:
    settings = Settings(backend="memory://", max_queue=1, max_tasks=5)
    backend = open_backend(settings, clock=clock, monotonic=clock)
    assert isinstance(backend, MemoryBackend)
    await backend.submit(new_task(clock), planned_s=1.0)
    with pytest.raises(QueueFull):  # max_queue=1 came through
        await backend.submit(new_task(clock), planned_s=1.0)
    clock.advance(5)
    claimed = await claim(backend)
    assert claimed.task.started_at == utc(clock())  # and so did the clock


async def test_open_backend_refuses_a_scheme_it_has_no_backend_for() -> None:
    settings = Settings.model_construct(backend="ftp://example")
    with pytest.raises(ValueError, match="no backend for ftp://"):
        open_backend(settings)


# Sweeps: a burst of expiries goes out in batches, with turns of the event loop between

MANY = 10_000
TTL_S = 60.0


async def finished_tasks(backend: MemoryBackend, clock: FakeClock, n: int) -> list[str]:
    """``n`` completed tasks, made through the backend's own transitions."""
    made = []
    for _ in range(n):
        task = await backend.submit(new_task(clock), planned_s=0.0)
        await backend.finish(await claim(backend), COMPLETED, result={"sum": 1})
        made.append(task.task_id)
    return made


async def test_a_sweep_delivers_its_expiries_in_batches_with_loop_turns_between(
    clock: FakeClock,
) -> None:
    # Room for every event at once: what is measured is how many a subscriber that takes
    # whatever is at hand, whenever it runs, finds waiting.
    backend = new_backend(clock, max_tasks=MANY, subscriber_queue=MANY + 1)
    made = await finished_tasks(backend, clock, MANY)
    taken: list[int] = []

    async def take_all(subscriber: Subscriber) -> None:
        async for event in subscriber:
            assert event.name == "task.expired"
            taken.append(1 + len(subscriber.drain()))
            if sum(taken) == MANY:
                return

    async with backend.bus.subscribe() as subscriber:
        taking = asyncio.create_task(take_all(subscriber))
        clock.advance(TTL_S + 1)
        assert await backend.sweep(ttl_s=TTL_S) == MANY
        async with asyncio.timeout(FAILSAFE_S):
            await taking
    assert sum(taken) == MANY
    assert max(taken) <= SWEEP_BATCH  # it ran between every two batches
    assert len(taken) >= MANY // SWEEP_BATCH
    # And a batch fits in a subscriber's queue as the service sizes it by default.
    assert Settings.model_fields["subscriber_queue"].default > SWEEP_BATCH
    assert backend.bus.dropped == 0
    assert await held(backend) == [] and len(made) == MANY
    assert await backend.counts() == await recount(backend)


async def test_a_sweep_of_what_has_not_expired_removes_nothing(clock: FakeClock) -> None:
    backend = new_backend(clock, max_tasks=10)
    made = await finished_tasks(backend, clock, 3)
    clock.advance(TTL_S)  # finished exactly TTL_S ago: not before the cutoff
    assert await backend.sweep(ttl_s=TTL_S) == 0
    assert len(await held(backend)) == len(made)


async def sweep_to_three_readers(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> tuple[list[str], list[list[str]], int]:
    """10 000 tasks expire at once while three clients read ``/events`` (each subscriber
    may hold 1000 events, the default); returns the tasks, the expiries each reader
    received, and how many subscribers the bus dropped."""
    app = make_app(max_tasks=MANY, result_ttl_s=TTL_S, subscriber_queue=1000)
    backend = backend_of(app)
    assert isinstance(backend, MemoryBackend)
    made = await finished_tasks(backend, clock, MANY)
    subscriptions = Subscriptions(bus_of(app))

    async def expired(client: httpx.AsyncClient) -> list[str]:
        seen: list[str] = []
        async with client.stream("GET", "/events") as response:
            assert response.status_code == 200
            async for event in sse(response):  # ends early if the subscriber is dropped
                if event.get("event") == "task.expired":
                    seen.append(orjson.loads(event["data"])["task_id"])
                    if len(seen) == MANY:
                        break
        return seen

    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client:
        readers = [asyncio.create_task(expired(client)) for _ in range(3)]
        await subscriptions.opened(3)
        clock.advance(TTL_S + 1)
        await app.state.cleanup.sweep()
        async with asyncio.timeout(3 * FAILSAFE_S):
            received = await asyncio.gather(*readers)
    assert await held(backend) == []
    return made, received, bus_of(app).dropped


async def test_every_sse_reader_receives_every_expiry_of_a_large_sweep(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    made, received, dropped = await sweep_to_three_readers(make_app, clock)
    assert [len(seen) for seen in received] == [MANY] * 3
    assert all(sorted(seen) == sorted(made) for seen in received)
    assert dropped == 0


async def test_the_same_sweep_in_one_batch_would_drop_every_reader(
    make_app: Callable[..., FastAPI], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: what the test above guards against still happens without batches.
    monkeypatch.setattr("service.backends.memory.backend.SWEEP_BATCH", 10**9)
    _, received, dropped = await sweep_to_three_readers(make_app, clock)
    assert dropped == 3
    assert all(len(seen) < MANY for seen in received)
