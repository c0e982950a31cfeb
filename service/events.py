"""Task events: what one is, and the in-process bus that fans them out to subscribers.

    async with bus.subscribe(EventFilter(task_id=...), after=last_event_id) as subscriber:
        async for event in subscriber:
            ...

Every backend records its events in an ``EventHistory`` (the memory backend in a ring
buffer, Redis in a stream) and hands each one, in id order, to this process's ``EventBus``,
which delivers it to the subscribers here: SSE streams, NDJSON watches and long-polls.

Delivering never blocks and never waits for a subscriber: each subscriber has a bounded
queue, and one that falls ``subscriber_queue`` events behind is dropped (its iteration
ends; ``overflowed`` says why). A subscriber that gives a resume point gets the history's
events after it first, then the live ones, without a gap or a repeat at the seam.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from service.model import Task, TaskStatus, owner_of, task_json

logger = logging.getLogger("taskwire.events")

EVENT_NAMES = (
    "task.queued",
    "task.processing",
    "task.progress",
    "task.completed",
    "task.failed",
    "task.cancelled",
    "task.expired",
)


@dataclass(frozen=True, slots=True)
class Event:
    """One state change: ``data`` is the task's JSON at the moment it happened."""

    id: int
    name: str
    task_id: str
    task_type: str
    status: TaskStatus
    data: bytes
    owner: str | None = None
    """Whose task it is (API keys on), so that a subscriber sees only what it may."""
    at: float = 0.0
    """When it was recorded (seconds since the epoch), for a task's timeline."""

    @classmethod
    def of(cls, event_id: int, name: str, task: Task, at: float = 0.0) -> Event:
        # A copy of exactly its length: orjson's bytes keep the whole buffer they were
        # written in (4 KiB at least), and events live on in the history and in queues.
        data = bytes(memoryview(task_json(task)))
        owner = owner_of(task)
        return cls(event_id, name, task.task_id, task.task_type, task.status, data, owner, at)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a subscriber wants; an empty field matches everything."""

    task_id: str | None = None
    task_types: frozenset[str] = frozenset()
    statuses: frozenset[TaskStatus] = frozenset()
    owner: str | None = None
    """Only this owner's tasks (a non-admin API key)."""

    def matches(self, event: Event) -> bool:
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (not self.task_types or event.task_type in self.task_types)
            and (not self.statuses or event.status in self.statuses)
            and (self.owner is None or event.owner == self.owner)
        )


REPLAY_PAGE = 256
"""Events a resuming subscriber fetches from the history at a time: a replay of the whole
history to a client that reads slowly holds one page in memory, not all of it."""


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Events of the history after some id, oldest first.

    ``resync`` says the id was older than the oldest event kept, or newer than the newest:
    events were lost to whoever asked. ``through`` is the id the page reaches (the next page
    starts after it) and ``more`` whether the history holds later events.
    """

    events: list[Event]
    through: int
    more: bool
    resync: bool = False


class EventHistory(Protocol):
    """A backend's record of its latest events, for subscribers that resume."""

    async def after(self, event_id: int, limit: int) -> HistoryPage:
        """Up to ``limit`` events after ``event_id``."""
        ...


class Subscriber:
    """One consumer: replayed events first, then live ones, as an async iterator.

    Iteration ends when the bus closes or the subscriber's time is up (``timed_out``), after
    the events already queued, or at once when the subscriber overflows. ``resync`` is true
    when the requested resume point was no longer in the history, so events were missed and
    the consumer should reload.
    """

    def __init__(
        self,
        event_filter: EventFilter,
        maxsize: int,
        max_bytes: int,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.filter = event_filter
        self.resync = False
        self.overflowed = False
        self.timed_out = False
        self._maxsize = maxsize
        self._max_bytes = max_bytes
        self._replay: deque[Event] = deque()
        """Replayed events fetched from the history and not yet taken."""
        self._history: EventHistory | None = None
        """Where the rest of the replay comes from, while pages of it remain."""
        self._seen = -1
        """Live events up to this id were replayed already, or are shown by a state read."""
        self._seen_of: dict[str, int] = {}
        """The same, task by task, for states read at different points (a paged list)."""
        self._queue: deque[Event] = deque()
        self._queued_bytes = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: list[Any] | None = None
        """Its entry among the bus's deadlines, if it was given one."""
        self._on_overflow = on_overflow
        """Told once, when it is dropped (live events beyond its queue, or a replay the
        history moved past)."""

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        while self._history is not None and not self._replay:
            await self._next_page()
        if self._replay:
            return self._replay.popleft()
        while True:
            while not self._queue:
                if self._closed:
                    raise StopAsyncIteration
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            event = self._queue.popleft()
            self._queued_bytes -= len(event.data)
            if self._is_news(event):
                return event

    def drain(self) -> list[Event]:
        """Take every event at hand, without waiting (for one write of many): the replay
        page fetched, then (once the replay is done) the live events queued."""
        drained = list(self._replay)
        self._replay.clear()
        if self._history is None:
            drained += (event for event in self._queue if self._is_news(event))
            self._queue.clear()
            self._queued_bytes = 0
        return drained

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False if that would overflow (by count or by bytes): the
        subscriber then ends at once."""
        if len(self._queue) >= self._maxsize or self._queued_bytes >= self._max_bytes:
            self._overflow()
            return False
        self._queue.append(event)
        self._queued_bytes += len(event.data)
        self._wake()
        return True

    def close(self) -> None:
        """End the iteration once the events already queued have been taken."""
        self._closed = True
        self._wake()

    def catch_up(self, event_id: int, task_id: str | None = None) -> None:
        """Drop the live events up to ``event_id`` (only ``task_id``'s, if given): a state
        read after subscribing already shows them, and replaying them would go back."""
        if task_id is None:
            self._seen = max(self._seen, event_id)
        else:
            self._seen_of[task_id] = event_id

    def _is_news(self, event: Event) -> bool:
        return event.id > self._seen and (
            not self._seen_of or event.id > self._seen_of.get(event.task_id, -1)
        )

    async def _resume(self, after: int, history: EventHistory) -> None:
        page = await history.after(after, REPLAY_PAGE)
        self.resync = page.resync
        if not page.resync:
            self._seen = after
            self._take(page, history)

    async def _next_page(self) -> None:
        assert self._history is not None
        page = await self._history.after(self._seen, REPLAY_PAGE)
        if page.resync:  # the history moved on past this subscriber while it replayed
            self._overflow()
        else:
            self._take(page, self._history)

    def _take(self, page: HistoryPage, history: EventHistory) -> None:
        self._seen = max(self._seen, page.through)
        self._replay.extend(event for event in page.events if self.filter.matches(event))
        self._history = history if page.more else None

    def _overflow(self) -> None:
        if not self.overflowed and self._on_overflow is not None:
            self._on_overflow()
        self._queue.clear()
        self._queued_bytes = 0
        self._replay.clear()
        self._history = None
        self.overflowed = True
        self.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Deadlines:
    """Subscribers' deadlines, kept in a heap with one timer for all: the earliest one's.

    A long-poll with a timer of its own costs a thousand waiters woken together a thousand
    timers to cancel; here a waiter that leaves early only lets go of its entry's subscriber.
    The entry stays until it comes due (and is skipped) or until the entries let go of are
    more than half the heap when another deadline is added, which rebuilds it without them.
    """

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        """``[when, order, subscriber or None]``: order breaks ties, so ``None`` never
        compares."""
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._gone = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, subscriber: Subscriber, after_s: float) -> list[Any]:
        """End ``subscriber``'s iteration ``after_s`` from now; returns its entry, for ``gone``."""
        loop = asyncio.get_running_loop()
        if self._gone > 64 and 2 * self._gone > len(self._heap):
            self._heap = [entry for entry in self._heap if entry[2] is not None]
            heapq.heapify(self._heap)  # (the timer may fire for an entry gone: it is skipped)
            self._gone = 0
        entry = [loop.time() + after_s, next(self._order), subscriber]
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._arm(loop)
        return entry

    def gone(self, entry: list[Any]) -> None:
        """The subscriber of ``entry`` left: its entry no longer holds it."""
        if entry[2] is not None:  # (None: it came due, and was taken out)
            entry[2] = None
            self._gone += 1

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self.cancel()
        if self._heap:
            self._timer = loop.call_at(self._heap[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            subscriber: Subscriber | None = entry[2]
            if subscriber is None:
                self._gone -= 1
            else:
                entry[2] = None
                subscriber.timed_out = True
                subscriber.close()
        self._arm(loop)


class Subscription:
    """``async with bus.subscribe(...) as subscriber``: the subscriber is the bus's from entry
    (its missed events read first, with ``after``) until exit.

    A class, not an ``asynccontextmanager``: a thousand long-polls woken at once each leave
    one, and a generator's enter and exit cost several calls more.
    """

    __slots__ = ("_after", "_bus", "_filter", "_for_s", "_kind", "_subscriber")

    def __init__(
        self,
        bus: EventBus,
        event_filter: EventFilter,
        after: int | None,
        kind: str,
        for_s: float | None,
    ) -> None:
        self._bus = bus
        self._filter = event_filter
        self._after = after
        self._kind = kind
        self._for_s = for_s
        self._subscriber: Subscriber | None = None

    async def __aenter__(self) -> Subscriber:
        bus = self._bus
        subscriber = self._subscriber = bus._join(self._filter, self._kind, self._for_s)
        if self._after is not None and not bus._closed:
            try:
                await subscriber._resume(self._after, bus._history)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return subscriber

    async def __aexit__(self, *exc_info: object) -> None:
        if self._subscriber is not None:
            self._bus._leave(self._subscriber, self._kind)
            self._subscriber = None


class EventBus:
    """This process's publish/subscribe of task events, fed by the backend in id order.

    Args:
        history: where a subscriber that resumes finds the events it missed.
        subscriber_queue: how many undelivered events one subscriber may hold.
        subscriber_bytes: how many bytes of event data one subscriber may hold.
        last_id: the id of the latest event already in the history when the bus starts.
    """

    def __init__(
        self,
        history: EventHistory,
        *,
        subscriber_queue: int,
        subscriber_bytes: int = 8 * 2**20,
        last_id: int,
    ) -> None:
        self._history = history
        self._subscriber_queue = subscriber_queue
        self._subscriber_bytes = subscriber_bytes
        self.last_id = last_id
        """The latest event delivered here: a new subscriber gets every event after it."""
        # Subscribers to one task are indexed by its id, so a thousand long-polls on other
        # tasks cost nothing when this one changes.
        self._everyone: set[Subscriber] = set()
        self._by_task: dict[str, set[Subscriber]] = {}
        self._deadlines = _Deadlines()
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.open_by_kind: Counter[str] = Counter()
        """Subscriptions open now, by what they serve."""

    @property
    def subscriber_count(self) -> int:
        return len(self._everyone) + sum(map(len, self._by_task.values()))

    async def history_after(self, event_id: int, limit: int = REPLAY_PAGE) -> HistoryPage:
        """Up to ``limit`` recorded events after ``event_id`` (see ``EventHistory``)."""
        return await self._history.after(event_id, limit)

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to every matching subscriber; the backend calls this in id order."""
        self.last_id = event.id
        self.delivered += 1
        self._deliver(event, self._everyone)
        if (watchers := self._by_task.get(event.task_id)) is not None:
            self._deliver(event, watchers)

    def subscribe(
        self,
        event_filter: EventFilter = EventFilter(),
        *,
        after: int | None = None,
        kind: str = "other",
        for_s: float | None = None,
    ) -> Subscription:
        """Receive every matching event delivered from now on, or after the event ``after``,
        in ``async with bus.subscribe(...) as subscriber``; ``kind`` says what for (``sse``,
        ``watch``, ``longpoll``...), for ``open_by_kind``. With ``for_s``, the iteration ends
        that many seconds from now (a long-poll's timeout), with ``timed_out`` set; every
        subscriber's deadline shares one timer.

        The subscriber is registered before the history is read, so an event that arrives
        meanwhile is either in the history or queued live; the id tells the two apart.
        """
        return Subscription(self, event_filter, after, kind, for_s)

    def _join(self, event_filter: EventFilter, kind: str, for_s: float | None) -> Subscriber:
        subscriber = Subscriber(
            event_filter, self._subscriber_queue, self._subscriber_bytes, self._count_drop
        )
        task_id = event_filter.task_id
        group = self._everyone if task_id is None else self._by_task.setdefault(task_id, set())
        group.add(subscriber)
        self.open_by_kind[kind] += 1
        if self._closed:
            subscriber.close()
        elif for_s is not None:
            subscriber._deadline = self._deadlines.add(subscriber, for_s)
        return subscriber

    def _leave(self, subscriber: Subscriber, kind: str) -> None:
        if subscriber._deadline is not None:
            self._deadlines.gone(subscriber._deadline)
        task_id = subscriber.filter.task_id
        group = self._everyone if task_id is None else self._by_task.get(task_id, set())
        group.discard(subscriber)
        self.open_by_kind[kind] -= 1
        if subscriber.overflowed:
            logger.warning(
                "dropped a subscriber that fell behind by %d events or %d bytes",
                self._subscriber_queue,
                self._subscriber_bytes,
            )
        if task_id is not None and not group and self._by_task.get(task_id) is group:
            del self._by_task[task_id]

    @property
    def closed(self) -> bool:
        """Closed (the process is stopping): every subscription ends at once."""
        return self._closed

    def reset(self) -> None:
        """End every subscription now open (after its queued events): this process may have
        missed events, and each consumer must resume by its last id to learn which."""
        for group in (self._everyone, *self._by_task.values()):
            for subscriber in group:
                subscriber.close()

    def close(self) -> None:
        """End every subscription (after its queued events) and every future one at once."""
        self._closed = True
        self._deadlines.cancel()
        for group in (self._everyone, *self._by_task.values()):
            for subscriber in group:
                subscriber.close()

    def _deliver(self, event: Event, subscribers: set[Subscriber]) -> None:
        overflowed = [
            subscriber
            for subscriber in subscribers
            if subscriber.filter.matches(event) and not subscriber.offer(event)
        ]
        for subscriber in overflowed:
            subscribers.discard(subscriber)

    def _count_drop(self) -> None:
        self.dropped += 1
