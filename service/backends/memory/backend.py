"""The memory backend: every task, the queue and the events in this process (the default).

Nothing else to run, and the fastest: each transition is a few dict and deque operations with
no await inside, so it is atomic on the event loop. The price is that the state lives and
dies with the process, and one process is the whole service.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

from service.backend import Cancelling, Claim, RateCheck, TaskPage, TaskQuery
from service.backends.memory.history import EventRing
from service.backends.memory.idempotency import IdempotencyRecords
from service.backends.memory.queue import TaskQueue
from service.backends.memory.ratelimit import SlidingWindowCounter
from service.backends.memory.store import TaskStore
from service.clock import Clock, utc
from service.errors import LeaseLost, QueueFull, RateLimited, StoreFull, TaskConflict
from service.events import Event, EventBus
from service.idempotency import Idempotency, IdempotencyRecord
from service.model import RETRYABLE, Task, TaskError, TaskStatus, task_json
from service.stats import WINDOW_S, Interval, history, interval_of

PAGE = 256
"""Tasks in one page of a list."""
SWEEP_BATCH = 100
"""Tasks expired, and their events delivered, between two turns of the event loop."""


class MemoryBackend:
    """The ``Backend`` of one process.

    Args:
        max_queue: most tasks waiting at once.
        max_tasks: most tasks held; finished ones are evicted first to make room.
        event_buffer: how many of the latest events are kept for replay.
        subscriber_queue: how many undelivered events one subscriber may hold.
        event_buffer_bytes, subscriber_bytes: the same, in bytes of event data.
        clock: wall-clock seconds, for the task timestamps and the TTL.
        monotonic: interval seconds, for the rate-limit window.
        first_event_id: id of the first event (by default, the time in microseconds).
    """

    name = "memory"
    lease_s: float | None = None  # a claim lives as long as this process

    def __init__(
        self,
        *,
        max_queue: int,
        max_tasks: int,
        event_buffer: int,
        subscriber_queue: int,
        event_buffer_bytes: int = 64 * 2**20,
        subscriber_bytes: int = 8 * 2**20,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        first_event_id: int | None = None,
    ) -> None:
        self._store = TaskStore(max_tasks)
        self._queue = TaskQueue(max_queue)
        self._history = EventRing(event_buffer, first_event_id, max_bytes=event_buffer_bytes)
        self.bus = EventBus(
            self._history,
            subscriber_queue=subscriber_queue,
            subscriber_bytes=subscriber_bytes,
            last_id=self._history.last_id,
        )
        self._clock = clock
        self._monotonic = monotonic
        self._planned_s: dict[str, float] = {}
        self._claims: dict[str, Claim] = {}
        """The processing tasks, by id, each with the claim that holds it."""
        self._tokens = map(str, itertools.count(1))
        self._stop: Callable[[str], object] = lambda task_id: None
        self._idempotency = IdempotencyRecords(max(10 * max_tasks, 100_000), clock)
        self._intervals: dict[int, Interval] = {}
        self._counters: dict[tuple[int, int], SlidingWindowCounter] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.bus.close()

    def on_cancel(self, stop: Callable[[str], object]) -> None:
        self._stop = stop

    async def get(self, task_id: str, *, rate: RateCheck | None = None) -> Task:
        if rate is not None:
            self._count(rate)
        return self._store.get(task_id)

    async def get_json(self, task_id: str, *, rate: RateCheck | None = None) -> bytes:
        return task_json(await self.get(task_id, rate=rate))

    async def read(self, task_id: str) -> tuple[Task, int]:
        return self._store.get(task_id), self._history.last_id

    def select(self, query: TaskQuery) -> AsyncIterator[TaskPage]:
        # Taken now, not at the first iteration: a watch subscribes, then selects, and no
        # event may fall between the two.
        return _paged(self._store.select(query), self._history.last_id)

    async def counts(self) -> Mapping[TaskStatus, int]:
        return self._store.counts

    async def submit(
        self,
        task: Task,
        *,
        planned_s: float,
        idempotency: Idempotency | None = None,
        rate: RateCheck | None = None,
    ) -> Task:
        if rate is not None:
            self._count(rate)
        if self._queue.is_full:
            raise QueueFull(self._queue.maxsize, self._retry_after_s())
        if self._store.is_full:
            raise StoreFull(self._store.capacity, self._retry_after_s())
        for evicted in self._store.add(task):
            self._removed(evicted)
        self._planned_s[task.task_id] = planned_s
        self._queue.put(task)
        if idempotency is not None:
            self._idempotency.complete(idempotency, task.task_id)
        self._publish(task)
        return task

    async def begin_idempotent(
        self, scope: str, in_flight_ttl_s: float
    ) -> IdempotencyRecord | None:
        return self._idempotency.begin(scope, in_flight_ttl_s)

    async def abandon_idempotent(self, scope: str) -> None:
        self._idempotency.abandon(scope)

    async def claim(self) -> Claim:
        task = await self._queue.get()
        task.start(self._now(), eta_s=round(self._planned_s[task.task_id], 1))
        self._store.moved(task, TaskStatus.QUEUED)
        claim = self._claims[task.task_id] = Claim(task, next(self._tokens))
        self._publish(task)
        return claim

    async def progress(self, claim: Claim, *, percent: int, eta_s: float) -> None:
        self._check(claim)
        claim.task.progress = percent
        claim.task.eta_s = eta_s
        self._publish(claim.task, "task.progress")

    async def finish(
        self,
        claim: Claim,
        status: TaskStatus,
        *,
        result: Any = None,
        error: TaskError | None = None,
        then_claim: bool = False,  # a claim costs nothing here: taken when asked for
    ) -> Task:
        self._check(claim)
        task = claim.task
        match status:
            case TaskStatus.COMPLETED:
                task.complete(result, self._now())
            case TaskStatus.FAILED if error is not None:
                task.fail(error, self._now())
            case TaskStatus.CANCELLED:
                task.cancel(self._now())
            case _:
                raise ValueError(f"a claim cannot end as {status} (error={error!r})")
        del self._claims[task.task_id]
        if status is TaskStatus.COMPLETED:  # never run again: held compactly, without a plan
            del self._planned_s[task.task_id]
            task.pack()
        self._store.moved(task, TaskStatus.PROCESSING)
        self._note_finish(task)
        self._publish(task)
        return task

    async def release(self, claim: Claim) -> Task:
        # Nothing outlives this process: a task that cannot finish here never finishes.
        return await self.finish(claim, TaskStatus.CANCELLED)

    async def renew(self, claim: Claim) -> None:
        self._check(claim)

    async def cancel(self, task_id: str) -> Cancelling:
        task = self._store.get(task_id)
        match task.status:
            case TaskStatus.QUEUED:
                self._queue.discard(task)
                task.cancel(self._now())
                self._store.moved(task, TaskStatus.QUEUED)
                self._note_finish(task)
                self._publish(task)
                return Cancelling(task, running=False)
            case TaskStatus.PROCESSING:
                self._stop(task_id)
                return Cancelling(task, running=True)
            case _:
                raise TaskConflict(
                    f"task {task_id} is {task.status}; "
                    "only queued or processing ones can be cancelled"
                )

    async def retry(self, task_id: str) -> Task:
        task = self._store.get(task_id)
        if task.status not in RETRYABLE:
            raise TaskConflict(
                f"task {task_id} is {task.status}; only failed or cancelled tasks can be retried"
            )
        if self._queue.is_full:
            raise QueueFull(self._queue.maxsize, self._retry_after_s())
        previous = task.status
        task.requeue()
        self._store.moved(task, previous)
        self._queue.put(task)
        self._publish(task)
        return task

    async def sweep(self, *, ttl_s: float) -> int:
        before = utc(self._clock() - ttl_s)
        removed = 0
        while expired := self._store.expire(finished_before=before, limit=SWEEP_BATCH):
            for task in expired:
                self._removed(task)
            removed += len(expired)
            # A burst of events goes out in batches, each followed by a turn of the event
            # loop, in which subscribers take what they have before the next batch comes.
            await asyncio.sleep(0)
        return removed

    async def sample(self) -> None:
        interval = self._interval()
        interval.queued = self._store.counts[TaskStatus.QUEUED]
        interval.processing = self._store.counts[TaskStatus.PROCESSING]

    async def stats(self) -> list[Interval]:
        return history(self._intervals, self._clock())

    async def task_events(self, task_id: str) -> list[Event]:
        return self._history.of_task(task_id)

    async def event_counts(self) -> Mapping[str, int]:
        return self._history.recorded

    async def elect(self, role: str, holder: str, ttl_s: float) -> bool:
        return True  # this process is the whole service

    def rate_counter(self, *, limit: int, window_s: int) -> SlidingWindowCounter:
        counter = self._counters.get((limit, window_s))
        if counter is None:
            counter = SlidingWindowCounter(limit=limit, window_s=window_s, clock=self._monotonic)
            self._counters[limit, window_s] = counter
        return counter

    def _count(self, rate: RateCheck) -> None:
        counter = self.rate_counter(limit=rate.limit, window_s=rate.window_s)
        allowed, remaining, reset_s = counter.hit_now(rate.key)
        rate.decide(allowed, remaining, reset_s)
        if not allowed:
            raise RateLimited(reset_s)

    def _interval(self) -> Interval:
        start = interval_of(self._clock())
        interval = self._intervals.get(start)
        if interval is None:
            interval = self._intervals[start] = Interval(start)
            horizon = start - WINDOW_S
            for old in [s for s in self._intervals if s <= horizon]:
                del self._intervals[old]
        return interval

    def _note_finish(self, task: Task) -> None:
        started, ended = task.started_at, task.finished_at
        run_time_s = None
        if started and ended and task.status is not TaskStatus.CANCELLED:
            run_time_s = (ended - started).total_seconds()
        self._interval().record_finish(task.task_type, task.status.value, run_time_s)

    def _check(self, claim: Claim) -> None:
        if self._claims.get(claim.task.task_id) is not claim:
            raise LeaseLost(claim.task.task_id)

    def _retry_after_s(self) -> int:
        """Whole seconds until a running task is expected to end and free a place."""
        etas = [claim.task.eta_s for claim in self._claims.values() if claim.task.eta_s is not None]
        return max(1, math.ceil(min(etas, default=1.0)))

    def _removed(self, task: Task) -> None:
        self._planned_s.pop(task.task_id, None)
        self._publish(task, "task.expired")

    def _publish(self, task: Task, name: str | None = None) -> None:
        name = name or f"task.{task.status}"
        self.bus.deliver(self._history.record(name, task, self._clock()))

    def _now(self) -> datetime:
        return utc(self._clock())


async def _paged(tasks: list[Task], as_of: int) -> AsyncIterator[TaskPage]:
    """The selection, all taken at ``as_of``, handed on a page at a time: a stream encodes
    and sends one page before it looks at the next, so the first bytes of a list of 100 000
    leave at once, and only a page's encoding is held at a time."""
    for start in range(0, len(tasks), PAGE):
        yield TaskPage(tasks[start : start + PAGE], as_of)
    if not tasks:
        yield TaskPage([], as_of)
