"""What only the Redis backend does: lost leases recovered, Redis away, its reader's order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from service.backend import Claim
from service.backends.redis import RedisBackend
from service.backends.redis.backend import cancelled, redacted
from service.backends.redis.codec import Entry
from service.errors import BackendUnavailable, LeaseLost
from service.events import EventFilter
from service.model import TaskError, TaskStatus
from tests.processes import free_port
from tests.service.backends.test_conformance import new_task, submit
from tests.support import FAILSAFE_S, FakeClock

MakeRedis = Callable[..., AbstractAsyncContextManager[RedisBackend]]


@pytest.fixture
def make_redis(redis_url: str, redis_prefix: str, clock: FakeClock) -> MakeRedis:
    @asynccontextmanager
    async def make(url: str | None = None, **options: Any) -> AsyncIterator[RedisBackend]:
        settings: dict[str, Any] = {
            "max_queue": 10,
            "max_tasks": 100,
            "event_buffer": 1000,
            "subscriber_queue": 1000,
            "concurrency": 5,
            "lease_s": 10.0,
            "reaper_every_s": 0,
            "clock": clock,
            **options,
        }
        backend = RedisBackend(url or redis_url, prefix=redis_prefix, **settings)
        await backend.start()
        try:
            yield backend
        finally:
            await backend.close()

    return make


async def claim(backend: RedisBackend) -> Claim:
    async with asyncio.timeout(FAILSAFE_S):
        return await backend.claim()


# Leases


async def test_a_finish_claims_the_next_task_in_the_same_step(make_redis: MakeRedis) -> None:
    async with make_redis() as backend:
        await submit(backend)
        second = await submit(backend)
        claimed = await claim(backend)
        await backend.finish(claimed, TaskStatus.COMPLETED, result=1, then_claim=True)
        # Processing already, by the finish's script, before anyone asked for a claim:
        assert (await backend.get(second.task_id)).status is TaskStatus.PROCESSING
        assert (await claim(backend)).task.task_id == second.task_id


async def test_a_task_claimed_by_a_finish_and_never_taken_goes_back_to_the_queue_at_close(
    make_redis: MakeRedis,
) -> None:
    async with make_redis() as backend:
        await submit(backend)
        second = await submit(backend)
        claimed = await claim(backend)
        await backend.finish(claimed, TaskStatus.COMPLETED, result=1, then_claim=True)
        assert (await backend.get(second.task_id)).status is TaskStatus.PROCESSING
    async with make_redis() as backend:  # the first process has closed: nothing holds it
        assert (await backend.get(second.task_id)).status is TaskStatus.QUEUED
        assert (await claim(backend)).task.task_id == second.task_id


async def test_a_task_a_finish_claims_for_a_job_cancelled_meanwhile_is_still_run(
    make_redis: MakeRedis,
) -> None:
    # A job stopped twice (a cancel heard from its DELETE and again from the stream) or at
    # shutdown stops waiting for its finish; the script still runs, and the task it claimed
    # must reach a worker, not sit claimed by nobody until its lease runs out.
    async with make_redis() as backend:
        first = await submit(backend)
        second = await submit(backend)
        claimed = await claim(backend)
        finishing = asyncio.ensure_future(
            backend.finish(claimed, TaskStatus.COMPLETED, result=1, then_claim=True)
        )
        await asyncio.sleep(0)  # the finish is asked for (queued for this turn's pipeline)
        finishing.cancel()
        assert (await claim(backend)).task.task_id == second.task_id
        assert (await backend.get(first.task_id)).status is TaskStatus.COMPLETED


async def test_a_claim_handed_to_a_worker_after_its_cancel_was_heard_is_stopped(
    make_redis: MakeRedis,
) -> None:
    # The cancel of a task claimed (by a finish) but not yet running here finds no job to
    # stop; the job made for it afterwards must still be stopped, not run to completion.
    async with make_redis() as backend:
        stops: list[str] = []
        heard = asyncio.Event()

        def stop(task_id: str) -> None:
            stops.append(task_id)
            if len(stops) == 2:
                heard.set()

        backend.on_cancel(stop)
        await submit(backend)
        second = await submit(backend)
        first = await claim(backend)
        await backend.finish(first, TaskStatus.COMPLETED, result=1, then_claim=True)
        assert (await backend.cancel(second.task_id)).running  # told at once: no job yet
        async with asyncio.timeout(FAILSAFE_S):
            await heard.wait()  # and again by the stream's cancel entry: still no job
        handed = await claim(backend)
        assert handed.task.task_id == second.task_id
        assert stops == [second.task_id] * 2
        await asyncio.sleep(0)  # the worker makes its job as claim() returns; then, the stop
        assert stops == [second.task_id] * 3


async def test_a_claim_whose_worker_stopped_waiting_is_released_at_close(
    make_redis: MakeRedis,
) -> None:
    async with make_redis() as backend:
        task = await submit(backend)
        claiming = asyncio.ensure_future(backend.claim())
        await asyncio.sleep(0)  # the claim's script is asked for
        claiming.cancel()
        await asyncio.gather(claiming, return_exceptions=True)
    # Closed: the claim that arrived for nobody went back to the queue.
    async with make_redis() as backend:
        assert (await backend.get(task.task_id)).status is TaskStatus.QUEUED
        assert (await backend.counts())[TaskStatus.PROCESSING] == 0


async def test_a_removed_task_leaves_no_timeline_behind(
    make_redis: MakeRedis, redis_url: str, redis_prefix: str, clock: FakeClock
) -> None:
    import redis.asyncio as aioredis

    async with make_redis(max_tasks=1) as backend:
        swept = await submit(backend)
        await backend.finish(await claim(backend), TaskStatus.COMPLETED, result=1)
        clock.advance(600)
        assert await backend.sweep(ttl_s=60) == 1  # expired
        evicted = await submit(backend)
        await backend.finish(await claim(backend), TaskStatus.COMPLETED, result=1)
        await submit(backend)  # the store is full: the finished one makes room
    client = aioredis.Redis.from_url(redis_url)
    try:
        for task in (swept, evicted):
            assert not await client.exists(f"{{{redis_prefix}}}:tev:{task.task_id}")
            assert not await client.exists(f"{{{redis_prefix}}}:task:{task.task_id}")
    finally:
        await client.aclose()


async def test_a_lost_lease_returns_the_task_to_the_queue_then_fails_it_the_second_time(
    make_redis: MakeRedis,
) -> None:
    async with make_redis(lease_s=0) as backend:  # every lease has run out at once
        task = await submit(backend)
        first = await claim(backend)
        await backend.sweep(ttl_s=600)
        requeued = await backend.get(task.task_id)
        assert (requeued.status, requeued.attempt) == (TaskStatus.QUEUED, 2)
        with pytest.raises(LeaseLost):  # the lost worker can no longer touch it
            await backend.finish(first, TaskStatus.COMPLETED, result=1)
        second = await claim(backend)
        assert second.task.attempt == 2 and second.token != first.token
        await backend.sweep(ttl_s=600)
        failed = await backend.get(task.task_id)
        assert failed.status is TaskStatus.FAILED
        assert failed.error is not None and failed.error.type == "WorkerLostError"
        counts = await backend.counts()
        assert (counts[TaskStatus.PROCESSING], counts[TaskStatus.FAILED]) == (0, 1)


async def test_a_lost_task_whose_cancel_was_asked_for_ends_cancelled(
    make_redis: MakeRedis,
) -> None:
    async with make_redis(lease_s=0) as backend:
        task = await submit(backend)
        await claim(backend)
        assert (await backend.cancel(task.task_id)).running
        await backend.sweep(ttl_s=600)
        assert (await backend.get(task.task_id)).status is TaskStatus.CANCELLED


async def test_a_live_lease_is_left_alone(make_redis: MakeRedis) -> None:
    async with make_redis(lease_s=60) as backend:
        task = await submit(backend)
        claimed = await claim(backend)
        await backend.sweep(ttl_s=600)
        assert (await backend.get(task.task_id)).status is TaskStatus.PROCESSING
        await backend.renew(claimed)


async def test_one_process_at_a_time_recovers_lost_leases(make_redis: MakeRedis) -> None:
    async with make_redis(lease_s=0, reaper_every_s=60) as backend:
        first, second = await submit(backend), await submit(backend)
        await claim(backend)
        await backend.sweep(ttl_s=600)  # recovers the first, and holds the guard for 60 s
        assert (await backend.get(first.task_id)).attempt == 2
        claimed = await claim(backend)
        assert claimed.task.task_id == second.task_id
        await backend.sweep(ttl_s=600)  # guarded: nothing recovered
        assert (await backend.get(second.task_id)).status is TaskStatus.PROCESSING


async def test_the_concurrency_is_counted_across_the_service(make_redis: MakeRedis) -> None:
    async with make_redis(concurrency=1) as one, make_redis(concurrency=1) as other:
        await submit(one)
        await submit(one)
        running = await claim(one)
        # One attempt of the other process's claim: refused, though a task is queued.
        started_at = b'"2027-01-15T08:00:00Z"'
        assert await other._transition("claim", "queue", 1, 10_000, started_at) is None
        assert (await other.counts())[TaskStatus.QUEUED] == 1
        waiting = asyncio.create_task(claim(other))
        await one.finish(running, TaskStatus.COMPLETED, result=1)  # a place frees up
        assert (await waiting).task.status is TaskStatus.PROCESSING


# Redis away


async def test_an_unreachable_redis_is_backend_unavailable_not_an_error(
    make_redis: MakeRedis,
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with make_redis(nobody) as backend:  # starting does not fail: it retries
        began = time.monotonic()
        for call in (backend.get("x"), backend.counts(), backend.submit(new_task(), planned_s=1)):
            with pytest.raises(BackendUnavailable) as raised:
                await call
            assert raised.value.backend == "redis"
        assert time.monotonic() - began < 2.0
        counter = backend.rate_counter(limit=1, window_s=1)
        with pytest.raises(BackendUnavailable):
            await counter.hit("a")


async def test_a_redis_that_does_not_answer_times_out_and_the_next_calls_fail_at_once(
    make_redis: MakeRedis,
) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads, never answers
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    async with silent, make_redis(f"redis://127.0.0.1:{port}/0", timeout_s=0.05) as backend:
        with pytest.raises(BackendUnavailable, match="Timeout"):
            await backend.get("x")
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match="Timeout"):
            await backend.counts()  # the circuit is open: no second wait
        assert time.monotonic() - began < 0.05
        silent.close()


# The reader


async def test_events_missed_by_this_process_end_its_subscriptions(
    make_redis: MakeRedis,
) -> None:
    async with make_redis() as backend:
        bus = backend.bus
        start = bus.last_id
        async with bus.subscribe(EventFilter()) as subscriber:
            fields = {b"n": b"task.queued", b"t": b"a", b"y": b"compute_sum", b"s": b"queued"}
            backend._deliver([Entry(f"{start + 5}-0".encode(), {**fields, b"d": b"{}"})])
            got = [event async for event in subscriber]  # ends: it must resume by its id
        assert [event.id for event in got] == [start + 5]
        assert bus.last_id == start + 5


async def test_a_cancel_entry_stops_the_task_here_and_is_not_an_event(
    make_redis: MakeRedis,
) -> None:
    async with make_redis() as backend:
        stopped: list[str] = []
        backend.on_cancel(stopped.append)
        start = backend.bus.last_id
        entry = Entry(f"{start + 1}-0".encode(), {b"n": b"cancel", b"t": b"a", b"y": b"x"})
        async with backend.bus.subscribe() as subscriber:
            backend._deliver([entry])
            assert subscriber.drain() == []
        assert stopped == ["a"]
        assert backend.bus.last_id == start + 1


@pytest.mark.parametrize("protocol", [2, 3])
async def test_the_reader_delivers_in_order_over_either_protocol(
    make_redis: MakeRedis, redis_url: str, protocol: int
) -> None:
    # XREAD's answer is a list of streams over RESP2, a map over RESP3 (redis-py 8's default).
    async with make_redis(f"{redis_url}?protocol={protocol}") as backend:
        async with backend.bus.subscribe() as subscriber:
            tasks = [await submit(backend) for _ in range(3)]
            async with asyncio.timeout(FAILSAFE_S):
                got = [await anext(aiter(subscriber)) for _ in tasks]
        assert [event.task_id for event in got] == [task.task_id for task in tasks]
        assert [event.id for event in got] == sorted(event.id for event in got)


async def test_cancelled_asks_again_until_the_task_has_ended() -> None:
    ended = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the first cancel is lost,
            await asyncio.Event().wait()  # as redis-py may lose it
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start waiting
    await cancelled(task)
    assert ended.is_set() and task.cancelled()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@host:6379/0", "redis://***@host:6379/0"),
        ("rediss://user:secret@host/1", "rediss://***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
    ],
)
def test_a_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


# The rate-limit window


async def test_an_interval_s_stats_expire_however_their_first_count_came(
    make_redis: MakeRedis, redis_prefix: str
) -> None:
    async with make_redis() as backend:
        redis = backend._redis
        # A failure makes the interval's key; a completion and a cancel count into it.
        await submit(backend)
        failure = TaskError("TaskFailedError", "no")
        await backend.finish(await claim(backend), TaskStatus.FAILED, error=failure)
        await submit(backend)
        await backend.finish(await claim(backend), TaskStatus.COMPLETED, result=1)
        await backend.cancel((await submit(backend)).task_id)
        [key] = [key async for key in redis.scan_iter(match=f"*{redis_prefix}*stats:*")]
        counts = await redis.hgetall(key)
        assert {k: v for k, v in counts.items() if k.startswith(b"f:")} == {
            b"f:failed": b"1",
            b"f:completed": b"1",
            b"f:cancelled": b"1",
        }
        assert 0 < await redis.ttl(key) <= 15 * 60 + 15


async def test_a_rate_window_is_one_list_that_outlives_its_first_request_by_a_window(
    make_redis: MakeRedis, redis_prefix: str
) -> None:
    async with make_redis() as backend:
        counter = backend.rate_counter(limit=3, window_s=10)  # entries shared within 10 ms
        for _ in range(2):
            await counter.hit("a")
        window = backend.key("rate:a")
        redis = backend._redis
        assert [key async for key in redis.scan_iter(match=f"*{redis_prefix}*rate*")] == [
            window.encode()
        ]
        # first:last:count:through (µs on Redis's clock; through: requests counted up to it)
        [entry] = await redis.lrange(window, 0, -1)
        first, last, count, through = map(int, entry.split(b":"))
        assert (count, through) == (2, 2) and 0 <= last - first < 10_000
        # Its newest request may move on by 10 ms within the entry, then be kept 10 s.
        assert 0 < await redis.pttl(window) <= 10_010
