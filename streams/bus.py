"""The event bus: every task state change, published once and fanned out to subscribers.

    async with bus.subscribe(EventFilter(task_id=...), after=last_event_id) as subscriber:
        async for event in subscriber:
            ...

Publishing never blocks and never waits for a subscriber: each subscriber has a bounded
queue, and one that falls ``subscriber_queue`` events behind is dropped (its iteration ends;
``overflowed`` says why). A replay buffer of the latest events lets a reconnecting client
resume after the last id it saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import islice

from service.model import Task, TaskStatus, task_json

logger = logging.getLogger("taskwire.bus")


@dataclass(frozen=True, slots=True)
class Event:
    """One state change: ``data`` is the task's JSON at the moment it happened."""

    id: int
    name: str
    task_id: str
    task_type: str
    status: TaskStatus
    data: bytes


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a subscriber wants; an empty field matches everything."""

    task_id: str | None = None
    task_types: frozenset[str] = frozenset()
    statuses: frozenset[TaskStatus] = frozenset()

    def matches(self, event: Event) -> bool:
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (not self.task_types or event.task_type in self.task_types)
            and (not self.statuses or event.status in self.statuses)
        )


class Subscriber:
    """One consumer: replayed events first, then live ones, as an async iterator.

    Iteration ends when the bus closes (after the events already queued) or at once when
    the subscriber overflows. ``resync`` is true when the requested resume point was no
    longer in the replay buffer, so events were missed and the consumer should reload.
    """

    def __init__(
        self, event_filter: EventFilter, maxsize: int, replay: list[Event], *, resync: bool
    ) -> None:
        self.filter = event_filter
        self.resync = resync
        self.overflowed = False
        self._maxsize = maxsize
        self._replay: Iterator[Event] = iter(replay)
        self._queue: deque[Event] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        if (replayed := next(self._replay, None)) is not None:
            return replayed
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def drain(self) -> list[Event]:
        """Take every event already queued, without waiting (for one write of many)."""
        drained = list(self._replay)
        drained += self._queue
        self._queue.clear()
        return drained

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False if that would overflow: the subscriber then ends at once."""
        if len(self._queue) >= self._maxsize:
            self._queue.clear()
            self._replay = iter(())
            self.overflowed = True
            self.close()
            return False
        self._queue.append(event)
        self._wake()
        return True

    def close(self) -> None:
        """End the iteration once the events already queued have been taken."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus:
    """In-process publish/subscribe of task events.

    Args:
        buffer_size: how many of the latest events are kept for replay.
        subscriber_queue: how many undelivered events one subscriber may hold.
        first_id: id of the first event. By default it is the current time in microseconds,
            so ids keep increasing across restarts and a client resuming with an id from an
            earlier run is told to resync instead of silently missing the new run's events.
    """

    def __init__(
        self, *, buffer_size: int, subscriber_queue: int, first_id: int | None = None
    ) -> None:
        self._buffer: deque[Event] = deque(maxlen=buffer_size)
        self._subscriber_queue = subscriber_queue
        self._first_id = time.time_ns() // 1000 if first_id is None else first_id
        self._last_id = self._first_id - 1
        # Subscribers to one task are indexed by its id, so a thousand long-polls on other
        # tasks cost nothing when this one changes.
        self._everyone: set[Subscriber] = set()
        self._by_task: dict[str, set[Subscriber]] = {}
        self._closed = False
        self.dropped = 0

    @property
    def last_id(self) -> int:
        return self._last_id

    @property
    def published(self) -> int:
        return self._last_id - self._first_id + 1

    @property
    def subscriber_count(self) -> int:
        return len(self._everyone) + sum(map(len, self._by_task.values()))

    def publish(self, name: str, task: Task) -> Event:
        self._last_id += 1
        event = Event(
            self._last_id, name, task.task_id, task.task_type, task.status, task_json(task)
        )
        self._buffer.append(event)
        self._deliver(event, self._everyone)
        if (watchers := self._by_task.get(task.task_id)) is not None:
            self._deliver(event, watchers)
        return event

    @asynccontextmanager
    async def subscribe(
        self, event_filter: EventFilter = EventFilter(), *, after: int | None = None
    ) -> AsyncIterator[Subscriber]:
        """Receive every matching event published from now on, or after the event ``after``."""
        replay: list[Event] = []
        resync = False
        if after is not None and not self._closed:
            replay, resync = self.replay_after(after)
        subscriber = Subscriber(
            event_filter,
            self._subscriber_queue,
            [event for event in replay if event_filter.matches(event)],
            resync=resync,
        )
        task_id = event_filter.task_id
        group = self._everyone if task_id is None else self._by_task.setdefault(task_id, set())
        group.add(subscriber)
        if self._closed:
            subscriber.close()
        try:
            yield subscriber
        finally:
            group.discard(subscriber)
            if subscriber.overflowed:
                logger.warning(
                    "dropped a subscriber that fell %d events behind", self._subscriber_queue
                )
            if task_id is not None and not group and self._by_task.get(task_id) is group:
                del self._by_task[task_id]

    def close(self) -> None:
        """End every subscription (after its queued events) and every future one at once."""
        self._closed = True
        for group in (self._everyone, *self._by_task.values()):
            for subscriber in group:
                subscriber.close()

    def replay_after(self, after: int) -> tuple[list[Event], bool]:
        """The buffered events after id ``after``, and whether some were lost (resync)."""
        oldest_kept = self._last_id - len(self._buffer) + 1
        if not oldest_kept - 1 <= after <= self._last_id:
            return [], True
        return list(islice(self._buffer, after - oldest_kept + 1, None)), False

    def _deliver(self, event: Event, subscribers: set[Subscriber]) -> None:
        overflowed = [
            subscriber
            for subscriber in subscribers
            if subscriber.filter.matches(event) and not subscriber.offer(event)
        ]
        for subscriber in overflowed:
            subscribers.discard(subscriber)
            self.dropped += 1
