"""The backend contract: what every backend must do, run against each (see conftest.BACKENDS).

Each test drives one backend through its protocol only (``service/backend.py``), the way the
engine and the routes do, and checks the state and the events it records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.backend import Backend, Claim, RateCheck, TaskQuery
from service.errors import (
    LeaseLost,
    QueueFull,
    RateLimited,
    StoreFull,
    TaskConflict,
    TaskNotFound,
)
from service.events import Event, EventFilter
from service.idempotency import Idempotency, IdempotencyRecord
from service.model import OwnedTask, Priority, Task, TaskError, TaskStatus, task_json
from service.stats import INTERVAL_S, INTERVALS, interval_of
from tests.service.backends.conftest import MakeBackend
from tests.support import FAILSAFE_S, FakeClock, Recorder, recording

QUEUED, PROCESSING = TaskStatus.QUEUED, TaskStatus.PROCESSING
COMPLETED, FAILED, CANCELLED = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED


def new_task(priority: Priority = "normal", task_type: str = "compute_sum") -> Task:
    return Task(
        task_id=str(uuid.uuid4()),
        task_type=task_type,
        priority=priority,
        parameters={"numbers": [1.0, 2.0]},
        created_at=datetime(2027, 1, 15, 8, 0, tzinfo=UTC),
    )


async def submit(
    backend: Backend, priority: Priority = "normal", *, rate: RateCheck | None = None, **kwargs: Any
) -> Task:
    return await backend.submit(new_task(priority, **kwargs), planned_s=8.04, rate=rate)


async def claim(backend: Backend) -> Claim:
    async with asyncio.timeout(FAILSAFE_S):
        return await backend.claim()


async def finished_as(backend: Backend, status: TaskStatus) -> Task:
    """A task taken through a claim to ``status``."""
    task = await submit(backend)
    claimed = await claim(backend)
    assert claimed.task.task_id == task.task_id
    error = TaskError("TaskFailedError", "simulated") if status is FAILED else None
    return await backend.finish(claimed, status, result={"sum": 3}, error=error)


def body(event: Event) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(event.data)
    return decoded


@pytest.fixture
async def recorder(backend: Backend) -> AsyncIterator[Recorder]:
    """Every event the backend records from now on, as its bus delivers them."""
    async with recording(backend.bus) as recorder:
        yield recorder


async def recorded(recorder: Recorder, n: int) -> list[Event]:
    """The first ``n`` events recorded, once they have been (delivery may lag a transition)."""
    return (await recorder.until(lambda events: len(events) >= n))[:n]


# Submitting and reading


async def test_a_submitted_task_is_queued_readable_and_announced(
    backend: Backend, recorder: Recorder
) -> None:
    task = await submit(backend, "high")
    stored = await backend.get(task.task_id)
    assert (stored.task_id, stored.status, stored.priority, stored.attempt) == (
        task.task_id,
        QUEUED,
        "high",
        1,
    )
    assert stored.parameters == {"numbers": [1.0, 2.0]}
    events = await recorded(recorder, 1)
    assert [(e.name, e.task_id, e.status) for e in events] == [
        ("task.queued", task.task_id, QUEUED)
    ]
    assert body(events[0])["task_id"] == task.task_id
    assert (await backend.counts())[QUEUED] == 1


async def test_an_unknown_task_is_not_found_by_any_operation(backend: Backend) -> None:
    unknown = str(uuid.uuid4())
    for operation in (backend.get, backend.get_json, backend.cancel, backend.retry):
        with pytest.raises(TaskNotFound):
            await operation(unknown)


async def test_the_queue_cap_refuses_one_more_and_stores_nothing(
    make_backend: MakeBackend,
) -> None:
    async with make_backend(max_queue=3) as backend:
        for _ in range(3):
            await submit(backend)
        refused = new_task()
        with pytest.raises(QueueFull) as raised:
            await backend.submit(refused, planned_s=1.0)
        assert raised.value.retry_after_s >= 1
        with pytest.raises(TaskNotFound):
            await backend.get(refused.task_id)
        assert (await backend.counts())[QUEUED] == 3
        await claim(backend)  # a place frees up
        await submit(backend)


async def test_a_full_store_evicts_the_task_that_finished_first(
    make_backend: MakeBackend, clock: FakeClock
) -> None:
    async with make_backend(max_tasks=3) as backend, recording(backend.bus) as recorder:
        first = await finished_as(backend, COMPLETED)
        clock.advance(1)
        second = await finished_as(backend, FAILED)
        live = await submit(backend)
        newest = await submit(backend)
        events = await recorder.until(lambda got: bool(got) and got[-1].task_id == newest.task_id)
        assert [(e.name, e.task_id) for e in events[-2:]] == [
            ("task.expired", first.task_id),
            ("task.queued", newest.task_id),
        ]
        assert recorder.count("task.expired") == 1
        with pytest.raises(TaskNotFound):
            await backend.get(first.task_id)
        for kept in (second, live, newest):
            await backend.get(kept.task_id)


async def test_a_store_full_of_live_tasks_refuses_with_store_full(
    make_backend: MakeBackend,
) -> None:
    async with make_backend(max_tasks=2, max_queue=10) as backend:
        await submit(backend)
        await submit(backend)
        with pytest.raises(StoreFull) as raised:
            await submit(backend)
        assert raised.value.retry_after_s >= 1


async def test_select_lists_newest_first_with_filters_and_a_limit(
    backend: Backend, clock: FakeClock
) -> None:
    done = await finished_as(backend, COMPLETED)
    clock.advance(1)
    email = await submit(backend, task_type="batch_email")
    clock.advance(1)
    latest = await submit(backend)

    async def ids(**query: Any) -> list[str]:
        return [t.task_id async for page in backend.select(TaskQuery(**query)) for t in page.tasks]

    assert await ids() == [latest.task_id, email.task_id, done.task_id]
    assert await ids(limit=2) == [latest.task_id, email.task_id]
    assert await ids(statuses=frozenset({COMPLETED})) == [done.task_id]
    assert await ids(statuses=frozenset({QUEUED}), task_type="batch_email") == [email.task_id]
    assert await ids(statuses=frozenset({FAILED})) == []


# Claiming


async def test_claims_take_higher_priorities_first_and_fifo_within_one(backend: Backend) -> None:
    order = ["low", "normal", "high", "normal", "high", "low"]
    submitted = [await submit(backend, priority) for priority in order]  # type: ignore[arg-type]
    claimed = [(await claim(backend)).task.task_id for _ in order]
    by_priority = {p: [t.task_id for t in submitted if t.priority == p] for p in set(order)}
    assert claimed == by_priority["high"] + by_priority["normal"] + by_priority["low"]


async def test_a_claim_moves_the_task_to_processing_with_an_event(
    backend: Backend, recorder: Recorder
) -> None:
    task = await submit(backend)
    claimed = await claim(backend)
    assert claimed.task.task_id == task.task_id
    stored = await backend.get(task.task_id)
    assert stored.status is PROCESSING
    assert stored.started_at is not None and stored.eta_s == 8.0  # planned_s, to 0.1 s
    events = await recorded(recorder, 2)
    assert [e.name for e in events] == ["task.queued", "task.processing"]
    counts = await backend.counts()
    assert (counts[QUEUED], counts[PROCESSING]) == (0, 1)


async def test_each_task_is_claimed_once_by_concurrent_claims(backend: Backend) -> None:
    claims = [asyncio.create_task(claim(backend)) for _ in range(3)]
    tasks = [await submit(backend) for _ in range(3)]
    claimed = await asyncio.gather(*claims)
    assert sorted(c.task.task_id for c in claimed) == sorted(t.task_id for t in tasks)
    assert len({c.token for c in claimed}) == 3


async def test_a_claim_waits_for_work(backend: Backend) -> None:
    waiting = asyncio.create_task(claim(backend))
    task = await submit(backend)
    assert (await waiting).task.task_id == task.task_id


# Progress and the end of a run


async def test_progress_is_recorded_and_announced(backend: Backend, recorder: Recorder) -> None:
    await submit(backend)
    claimed = await claim(backend)
    await backend.progress(claimed, percent=40, eta_s=4.8)
    stored = await backend.get(claimed.task.task_id)
    assert (stored.status, stored.progress, stored.eta_s) == (PROCESSING, 40, 4.8)
    events = await recorded(recorder, 3)
    assert events[-1].name == "task.progress"
    assert (body(events[-1])["progress"], body(events[-1])["eta_s"]) == (40, 4.8)


async def test_a_finish_free_for_the_next_task_gets_it_from_the_next_claim(
    backend: Backend,
) -> None:
    first, second = await submit(backend), await submit(backend)
    claimed = await claim(backend)
    assert claimed.task.task_id == first.task_id
    await backend.finish(claimed, COMPLETED, result=1, then_claim=True)
    following = await claim(backend)
    assert (following.task.task_id, following.task.status) == (second.task_id, PROCESSING)
    assert (await backend.get(second.task_id)).status is PROCESSING
    await backend.finish(following, COMPLETED, result=2, then_claim=True)  # nothing left
    assert (await backend.counts())[PROCESSING] == 0


@pytest.mark.parametrize("status", [COMPLETED, FAILED, CANCELLED], ids=str)
async def test_a_claim_ends_the_task_once_with_its_outcome(
    backend: Backend, recorder: Recorder, status: TaskStatus
) -> None:
    task = await finished_as(backend, status)
    stored = await backend.get(task.task_id)
    assert stored.status is status
    assert stored.finished_at is not None and stored.eta_s is None
    match status:
        case TaskStatus.COMPLETED:
            # As JSON: a backend may hold a completed task's values packed (Task.pack).
            assert orjson.loads(task_json(stored))["result"] == {"sum": 3}
            assert (stored.progress, stored.error) == (100, None)
        case TaskStatus.FAILED:
            assert stored.error == TaskError("TaskFailedError", "simulated")
            assert stored.result is None
    events = await recorded(recorder, 3)
    assert [e.name for e in events] == ["task.queued", "task.processing", f"task.{status}"]
    counts = await backend.counts()
    assert (counts[PROCESSING], counts[status]) == (0, 1)


async def test_a_claim_that_has_ended_can_write_nothing_more(backend: Backend) -> None:
    await submit(backend)
    claimed = await claim(backend)
    await backend.finish(claimed, COMPLETED, result=1)
    for write in (
        backend.finish(claimed, FAILED, error=TaskError("X", "late")),
        backend.progress(claimed, percent=50, eta_s=1.0),
        backend.renew(claimed),
    ):
        with pytest.raises(LeaseLost):
            await write
    assert (await backend.get(claimed.task.task_id)).status is COMPLETED


async def test_a_live_claim_can_be_renewed(backend: Backend) -> None:
    await submit(backend)
    claimed = await claim(backend)
    await backend.renew(claimed)
    assert (await backend.get(claimed.task.task_id)).status is PROCESSING


# Cancel and retry


async def test_cancel_of_a_queued_task_is_immediate_and_it_never_runs(
    backend: Backend, recorder: Recorder
) -> None:
    first, second = await submit(backend), await submit(backend)
    cancelling = await backend.cancel(first.task_id)
    assert not cancelling.running
    assert cancelling.task.status is CANCELLED and cancelling.task.finished_at is not None
    assert (await backend.get(first.task_id)).status is CANCELLED
    assert (await claim(backend)).task.task_id == second.task_id
    events = await recorded(recorder, 4)
    assert [(e.name, e.task_id) for e in events if e.task_id == first.task_id] == [
        ("task.queued", first.task_id),
        ("task.cancelled", first.task_id),
    ]
    assert (await backend.counts())[QUEUED] == 0


async def test_cancel_of_a_processing_task_leaves_its_end_to_the_worker(backend: Backend) -> None:
    await submit(backend)
    claimed = await claim(backend)
    cancelling = await backend.cancel(claimed.task.task_id)
    assert cancelling.running
    assert (await backend.get(claimed.task.task_id)).status is PROCESSING
    ended = await backend.finish(claimed, CANCELLED)
    assert ended.status is CANCELLED


@pytest.mark.parametrize("status", [COMPLETED, FAILED, CANCELLED], ids=str)
async def test_cancel_of_a_finished_task_is_a_conflict_and_changes_nothing(
    backend: Backend, status: TaskStatus
) -> None:
    task = await finished_as(backend, status)
    with pytest.raises(TaskConflict):
        await backend.cancel(task.task_id)
    assert (await backend.get(task.task_id)).status is status


@pytest.mark.parametrize("status", [FAILED, CANCELLED], ids=str)
async def test_retry_queues_a_failed_or_cancelled_task_as_its_next_attempt(
    backend: Backend, recorder: Recorder, status: TaskStatus
) -> None:
    task = await finished_as(backend, status)
    retried = await backend.retry(task.task_id)
    assert (retried.status, retried.attempt, retried.progress) == (QUEUED, 2, 0)
    assert retried.error is None and retried.result is None
    assert retried.started_at is None and retried.finished_at is None
    assert (await claim(backend)).task.task_id == task.task_id  # it runs again
    events = await recorded(recorder, 5)
    assert [e.name for e in events][3:] == ["task.queued", "task.processing"]


async def test_retry_of_a_queued_processing_or_completed_task_is_a_conflict(
    backend: Backend,
) -> None:
    done = await finished_as(backend, COMPLETED)
    await submit(backend)
    processing = await claim(backend)
    waiting = await submit(backend)
    for task in (waiting, processing.task, done):
        with pytest.raises(TaskConflict):
            await backend.retry(task.task_id)
        assert (await backend.get(task.task_id)).attempt == 1


async def test_retry_is_refused_when_the_queue_is_full(make_backend: MakeBackend) -> None:
    async with make_backend(max_queue=1) as backend:
        failed = await finished_as(backend, FAILED)
        await submit(backend)
        with pytest.raises(QueueFull):
            await backend.retry(failed.task_id)
        assert (await backend.get(failed.task_id)).status is FAILED


# Expiry


async def test_a_sweep_removes_tasks_finished_longer_ago_than_the_ttl(
    backend: Backend, recorder: Recorder, clock: FakeClock
) -> None:
    old = await finished_as(backend, COMPLETED)
    clock.advance(30)
    recent = await finished_as(backend, CANCELLED)
    live = await submit(backend)
    clock.advance(40)  # old finished 70 s ago, recent 40 s ago
    assert await backend.sweep(ttl_s=60) == 1
    events = await recorder.until_count("task.expired", 1)
    assert [(e.name, e.task_id) for e in events if e.name == "task.expired"] == [
        ("task.expired", old.task_id)
    ]
    assert events[-1].name == "task.expired"
    with pytest.raises(TaskNotFound):
        await backend.get(old.task_id)
    for kept in (recent, live):
        await backend.get(kept.task_id)
    assert sum((await backend.counts()).values()) == 2


# Events


async def test_event_ids_strictly_increase(backend: Backend, recorder: Recorder) -> None:
    await finished_as(backend, COMPLETED)
    await finished_as(backend, FAILED)
    events = await recorded(recorder, 6)
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))
    assert backend.bus.last_id == ids[-1]


async def test_a_subscriber_resuming_after_an_id_gets_the_rest_then_live_events(
    backend: Backend, recorder: Recorder
) -> None:
    first = await submit(backend)
    resume_at = (await recorded(recorder, 1))[-1].id
    second = await submit(backend)
    async with backend.bus.subscribe(after=resume_at) as subscriber:
        assert not subscriber.resync
        third = await submit(backend)
        async with asyncio.timeout(FAILSAFE_S):
            got = [await anext(subscriber) for _ in range(2)]
    assert [e.task_id for e in got] == [second.task_id, third.task_id]
    assert first.task_id not in {e.task_id for e in got}


async def test_a_resume_point_with_nothing_after_it_replays_nothing(
    backend: Backend, recorder: Recorder
) -> None:
    await submit(backend)
    newest = (await recorded(recorder, 1))[-1]
    async with backend.bus.subscribe(after=newest.id) as subscriber:
        assert not subscriber.resync
        assert subscriber.drain() == []


async def test_a_replay_honours_the_filter(backend: Backend) -> None:
    resume_at = backend.bus.last_id
    wanted = await submit(backend, task_type="batch_email")
    await submit(backend)
    email_only = EventFilter(task_types=frozenset({"batch_email"}))
    async with backend.bus.subscribe(email_only, after=resume_at) as subscriber:
        assert [e.task_id for e in subscriber.drain()] == [wanted.task_id]


@pytest.mark.parametrize("where", ["older than the history", "newer than the last event"])
async def test_a_resume_point_outside_the_history_asks_for_a_resync(
    make_backend: MakeBackend, where: str
) -> None:
    # Redis trims its stream in whole nodes of 100 entries: 300 events lose the first ones.
    async with make_backend(event_buffer=3, max_queue=400, max_tasks=400) as backend:
        before = backend.bus.last_id
        for _ in range(300):
            await submit(backend)
        after = before if where.startswith("older") else backend.bus.last_id + 10**6
        async with backend.bus.subscribe(after=after) as subscriber:
            assert subscriber.resync  # nothing is replayed: the client must reload
            live = await submit(backend)
            async with asyncio.timeout(FAILSAFE_S):
                async for event in subscriber:  # then live events (Redis's reader may still
                    if event.task_id == live.task_id:  # be delivering earlier ones)
                        break


async def test_the_oldest_kept_event_still_resumes_without_a_resync(
    make_backend: MakeBackend,
) -> None:
    async with make_backend(event_buffer=3) as backend, recording(backend.bus) as recorder:
        for _ in range(5):
            await submit(backend)
        last = (await recorder.until_count("task.queued", 5))[-1].id
        async with backend.bus.subscribe(after=last - 3) as subscriber:
            assert not subscriber.resync
            assert [e.id for e in subscriber.drain()] == [last - 2, last - 1, last]


# The rate-limit window


async def test_the_rate_limit_allows_limit_requests_per_key_per_window(
    backend: Backend, clock: FakeClock
) -> None:
    counter = backend.rate_counter(limit=2, window_s=10)
    assert (counter.limit, counter.window_s) == (2, 10)
    assert await counter.hit("a") == (True, 1, 10)
    clock.advance(4)
    assert await counter.hit("a") == (True, 0, 6)
    assert await counter.hit("b") == (True, 1, 10)  # keys are counted apart
    assert await counter.hit("a") == (False, 0, 6)  # refused: not counted
    clock.advance(6)  # the first request leaves the window
    assert await counter.hit("a") == (True, 0, 4)
    assert await counter.hit("a") == (False, 0, 4)


async def test_requests_within_a_thousandth_of_the_window_share_an_entry(
    backend: Backend, clock: FakeClock
) -> None:
    # Their entry leaves the window with the last of them: never sooner than exactly.
    counter = backend.rate_counter(limit=3, window_s=10)  # shared within 10 ms
    assert await counter.hit("a") == (True, 2, 10)
    clock.advance(0.004)
    assert await counter.hit("a") == (True, 1, 10)  # the same entry, moved on
    clock.advance(4.996)  # t = 5 s
    assert await counter.hit("a") == (True, 0, 6)
    clock.advance(5.002)  # t = 10.002 s: the first request's time has left, not the entry's
    assert await counter.hit("a") == (False, 0, 1)
    clock.advance(0.003)  # t = 10.005 s: the entry leaves with its last request
    assert await counter.hit("a") == (True, 1, 5)
    assert await counter.hit("a") == (True, 0, 5)
    assert await counter.hit("a") == (False, 0, 5)


async def test_each_entry_of_a_long_window_frees_its_requests_as_it_leaves(
    backend: Backend, clock: FakeClock
) -> None:
    counter = backend.rate_counter(limit=5, window_s=10)
    hits = {0.0: 2, 2.0: 1, 4.0: 1, 6.0: 2, 10.0: 3, 12.5: 2}  # seconds in: requests then
    answers, started = [], clock.now
    for at, requests in hits.items():
        clock.advance(started + at - clock.now)
        answers += [await counter.hit("a") for _ in range(requests)]
    assert answers == [
        (True, 4, 10),
        (True, 3, 10),  # t = 0: two requests, one entry
        (True, 2, 8),
        (True, 1, 6),
        (True, 0, 4),
        (False, 0, 4),  # t = 6: full
        (True, 1, 2),  # t = 10: the first entry left with both of its requests
        (True, 0, 2),
        (False, 0, 2),
        (True, 0, 2),  # t = 12.5: the t = 2 entry left
        (False, 0, 2),
    ]


class Check:
    """A request's count handed to the backend with its call (``RateCheck``)."""

    def __init__(self, key: str, limit: int = 2, window_s: int = 10) -> None:
        self.key, self.limit, self.window_s = key, limit, window_s
        self.decisions: list[tuple[bool, int, int]] = []

    def decide(self, allowed: bool, remaining: int, reset_s: int) -> None:
        self.decisions.append((allowed, remaining, reset_s))


async def test_a_submit_with_a_rate_check_counts_first_and_stores_nothing_when_refused(
    backend: Backend, clock: FakeClock
) -> None:
    first, second, third = Check("a"), Check("a"), Check("a")
    await submit(backend, rate=first)
    clock.advance(4)
    await submit(backend, rate=second)
    with pytest.raises(RateLimited) as refused:
        await submit(backend, rate=third)
    assert refused.value.retry_after_s == 6
    assert [first.decisions, second.decisions, third.decisions] == [
        [(True, 1, 10)],
        [(True, 0, 6)],
        [(False, 0, 6)],
    ]
    assert (await backend.counts())[QUEUED] == 2  # the refused one was not stored
    # The same windows as the backend's counter of the same settings:
    assert await backend.rate_counter(limit=2, window_s=10).hit("a") == (False, 0, 6)
    assert await backend.rate_counter(limit=2, window_s=10).hit("b") == (True, 1, 10)


async def test_a_full_queue_still_counts_the_request(make_backend: MakeBackend) -> None:
    async with make_backend(max_queue=1) as backend:
        await submit(backend)
        check = Check("a")
        with pytest.raises(QueueFull):
            await submit(backend, rate=check)
        assert check.decisions == [(True, 1, 10)]


@pytest.mark.parametrize("read", ["get", "get_json"])
async def test_a_read_with_a_rate_check_counts_found_or_not(backend: Backend, read: str) -> None:
    reader = getattr(backend, read)
    task = await submit(backend)
    found, missing, refused = Check("a"), Check("a"), Check("a")
    answer = await reader(task.task_id, rate=found)
    assert (answer.task_id if read == "get" else orjson.loads(answer)["task_id"]) == task.task_id
    with pytest.raises(TaskNotFound):
        await reader(str(uuid.uuid4()), rate=missing)
    with pytest.raises(RateLimited):
        await reader(task.task_id, rate=refused)
    assert [found.decisions, missing.decisions, refused.decisions] == [
        [(True, 1, 10)],
        [(True, 0, 10)],
        [(False, 0, 10)],
    ]


async def test_a_tasks_json_is_what_task_json_writes_in_every_state(backend: Backend) -> None:
    # A read answers with get_json: the same bytes as the task read and encoded, whatever
    # the backend keeps (Redis: the JSON its scripts assemble from fragments).
    completed = await finished_as(backend, COMPLETED)
    failed = await finished_as(backend, FAILED)
    await submit(backend)
    claimed = await claim(backend)
    await backend.progress(claimed, percent=40, eta_s=4.8125)
    queued = await submit(backend, "low")
    owned = await backend.submit(
        OwnedTask(
            task_id=str(uuid.uuid4()),
            task_type="compute_sum",
            priority="high",
            parameters={"numbers": [0.1, 1e-7, 12345678.9]},
            created_at=datetime(2027, 1, 15, 8, 0, 0, 123456, tzinfo=UTC),
            owner="alice",
        ),
        planned_s=8.04,
    )
    for task_id in (
        queued.task_id,
        owned.task_id,
        claimed.task.task_id,
        completed.task_id,
        failed.task_id,
    ):
        assert await backend.get_json(task_id) == task_json(await backend.get(task_id))
    assert orjson.loads(await backend.get_json(owned.task_id))["owner"] == "alice"
    assert orjson.loads(await backend.get_json(claimed.task.task_id))["eta_s"] == 4.8125
    # A submit's answer is written from the task submit returns; a later read, from what is held.
    for submitted in (queued, owned):
        assert task_json(submitted) == await backend.get_json(submitted.task_id)


# Reads with their position, and release


async def test_a_read_gives_the_task_with_the_latest_event_its_state_shows(
    backend: Backend, recorder: Recorder
) -> None:
    await submit(backend)
    claimed = await claim(backend)
    processing = (await recorded(recorder, 2))[-1]
    task, as_of = await backend.read(claimed.task.task_id)
    assert task.status is PROCESSING
    assert as_of >= processing.id


async def test_each_page_of_a_list_gives_the_latest_event_its_tasks_show(
    backend: Backend, recorder: Recorder
) -> None:
    task = await submit(backend)
    queued = (await recorded(recorder, 1))[-1]
    pages = [page async for page in backend.select(TaskQuery())]
    assert [t.task_id for page in pages for t in page.tasks] == [task.task_id]
    assert all(page.as_of >= queued.id for page in pages)


async def test_a_long_list_comes_in_pages_of_at_most_256_in_order(
    make_backend: MakeBackend,
) -> None:
    # A stream encodes and sends a page before it takes the next: the first bytes of a long
    # list leave at once, and only one page's encoding is held at a time.
    async with make_backend(max_queue=600, max_tasks=600) as backend:
        ids = [(await submit(backend)).task_id for _ in range(600)]
        pages = [page async for page in backend.select(TaskQuery())]
    assert [len(page.tasks) for page in pages] == [256, 256, 88]
    assert [t.task_id for page in pages for t in page.tasks] == ids[::-1]


async def test_a_released_claim_frees_the_task_from_its_worker(backend: Backend) -> None:
    await submit(backend)
    claimed = await claim(backend)
    released = await backend.release(claimed)
    if backend.lease_s is None:  # nothing outlives the process: it ends here
        assert released.status is CANCELLED
    else:  # back to the queue, as its next attempt, for another worker
        assert (released.status, released.attempt) == (QUEUED, 2)
        assert (await claim(backend)).task.task_id == claimed.task.task_id
    with pytest.raises(LeaseLost):
        await backend.finish(claimed, COMPLETED, result=1)


async def test_on_cancel_is_told_when_a_processing_task_is_cancelled(backend: Backend) -> None:
    stopped: asyncio.Queue[str] = asyncio.Queue()
    backend.on_cancel(stopped.put_nowait)
    await submit(backend)
    claimed = await claim(backend)
    await backend.cancel(claimed.task.task_id)
    async with asyncio.timeout(FAILSAFE_S):
        assert await stopped.get() == claimed.task.task_id


# Idempotency records


async def test_an_unused_key_is_marked_in_flight_then_recorded_with_its_task(
    backend: Backend,
) -> None:
    assert await backend.begin_idempotent("203.0.113.7/k1", 60) is None
    assert await backend.begin_idempotent("203.0.113.7/k1", 60) == IdempotencyRecord(True)
    task = await backend.submit(
        new_task(), planned_s=1.0, idempotency=Idempotency("203.0.113.7/k1", "digest", 600)
    )
    assert await backend.begin_idempotent("203.0.113.7/k1", 60) == IdempotencyRecord(
        False, "digest", task.task_id
    )
    assert await backend.begin_idempotent("198.51.100.1/k1", 60) is None  # another scope


async def test_an_abandoned_key_is_free_again_but_a_recorded_one_stays(backend: Backend) -> None:
    assert await backend.begin_idempotent("a/free", 60) is None
    await backend.abandon_idempotent("a/free")
    assert await backend.begin_idempotent("a/free", 60) is None  # free: marked anew
    await backend.submit(new_task(), planned_s=1.0, idempotency=Idempotency("a/kept", "d", 600))
    await backend.abandon_idempotent("a/kept")  # recorded: abandoning does nothing
    found = await backend.begin_idempotent("a/kept", 60)
    assert found is not None and not found.in_flight


async def test_a_refused_submit_records_no_key(make_backend: MakeBackend) -> None:
    async with make_backend(max_queue=1) as backend:
        await submit(backend)
        assert await backend.begin_idempotent("a/k", 60) is None
        with pytest.raises(QueueFull):
            await backend.submit(new_task(), planned_s=1.0, idempotency=Idempotency("a/k", "d", 60))
        assert await backend.begin_idempotent("a/k", 60) == IdempotencyRecord(True)


# The last 15 minutes


async def test_stats_note_each_end_in_its_interval_with_run_times_by_type(
    backend: Backend, clock: FakeClock
) -> None:
    await submit(backend)
    claimed = await claim(backend)
    clock.advance(3.0)  # it runs 3 s
    await backend.finish(claimed, COMPLETED, result=1)
    cancelled = await submit(backend)
    await backend.cancel(cancelled.task_id)
    failed = await finished_as(backend, FAILED)  # 0 s
    intervals = await backend.stats()
    assert len(intervals) == INTERVALS
    assert [i.start for i in intervals] == sorted(i.start for i in intervals)
    now = intervals[-1]
    assert now.start == interval_of(clock())
    assert now.finished == {"completed": 1, "failed": 1, "cancelled": 1}
    times = now.run_times[failed.task_type]
    assert sum(times) == 2  # the completed and the failed run, not the cancel
    assert now.as_json()["run_time_s"]["compute_sum"]["p95"] == pytest.approx(3.0, rel=0.5)
    assert all(not i.finished["completed"] for i in intervals[:-1])


async def test_stats_sample_the_queue_and_the_workers(backend: Backend, clock: FakeClock) -> None:
    await submit(backend)
    await submit(backend)
    await claim(backend)
    await backend.sample()
    first = (await backend.stats())[-1]
    assert (first.queued, first.processing) == (1, 1)
    clock.advance(INTERVAL_S)
    later = await backend.stats()
    assert (later[-2].queued, later[-1].queued) == (1, None)  # the next interval: no sample yet


async def test_stats_hold_the_last_fifteen_minutes(backend: Backend, clock: FakeClock) -> None:
    await finished_as(backend, COMPLETED)
    clock.advance(INTERVAL_S * (INTERVALS - 1))
    assert (await backend.stats())[0].finished["completed"] == 1  # the oldest still held
    clock.advance(INTERVAL_S)
    assert all(not i.finished["completed"] for i in await backend.stats())


async def test_a_task_s_events_are_kept_for_its_timeline_with_when_they_happened(
    backend: Backend, clock: FakeClock
) -> None:
    task = await finished_as(backend, FAILED)
    other = await submit(backend)
    clock.advance(5)
    await backend.retry(task.task_id)
    timeline = await backend.task_events(task.task_id)
    assert [e.name for e in timeline] == [
        "task.queued",
        "task.processing",
        "task.failed",
        "task.queued",
    ]
    assert [e.id for e in timeline] == sorted(e.id for e in timeline)
    assert timeline[-1].at == pytest.approx(clock(), abs=0.001)
    assert timeline[-1].at - timeline[0].at == pytest.approx(5, abs=0.001)
    assert other.task_id not in {e.task_id for e in timeline}
    assert await backend.task_events("0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11") == []
