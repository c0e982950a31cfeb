"""The event bus: fed events in id order by a backend, it fans them out to subscribers, and
replays a backend's history to those that resume. The memory backend's EventRing is the history
here; SlowHistory lets events arrive while a subscriber is still reading the history."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest

from service.backends.memory.history import EventRing
from service.events import REPLAY_PAGE, Event, EventBus, EventFilter, HistoryPage, Subscriber
from service.model import Task, TaskStatus
from tests.support import FAILSAFE_S


def make_task(task_id: str = "a", task_type: str = "compute_sum") -> Task:
    return Task(task_id=task_id, task_type=task_type, parameters={}, created_at=datetime.now(UTC))


class Feed:
    """A bus over an EventRing, fed the way a backend feeds it: record, then deliver."""

    def __init__(
        self,
        *,
        buffer_size: int = 100,
        subscriber_queue: int = 100,
        buffer_bytes: int = 2**30,
        subscriber_bytes: int = 2**30,
    ) -> None:
        self.ring = EventRing(buffer_size, first_id=1, max_bytes=buffer_bytes)
        self.bus = EventBus(
            self.ring,
            subscriber_queue=subscriber_queue,
            subscriber_bytes=subscriber_bytes,
            last_id=self.ring.last_id,
        )

    def publish(
        self,
        task_id: str = "a",
        status: TaskStatus = TaskStatus.QUEUED,
        task_type: str = "compute_sum",
    ) -> Event:
        task = make_task(task_id, task_type)
        task.status = status
        event = self.ring.record(f"task.{status}", task)
        self.bus.deliver(event)
        return event


def queued(subscriber: Subscriber) -> list[int]:
    """The ids a subscriber holds for delivery right now (its live queue)."""
    return [event.id for event in subscriber._queue]


async def take(subscriber: Subscriber, n: int) -> list[Event]:
    async with asyncio.timeout(FAILSAFE_S):
        return [await anext(subscriber) for _ in range(n)]


async def test_delivered_events_carry_the_task_json_and_move_last_id() -> None:
    feed = Feed()
    assert (feed.bus.last_id, feed.bus.delivered) == (0, 0)
    first, second = feed.publish(), feed.publish(status=TaskStatus.PROCESSING)
    assert (first.id, second.id) == (1, 2)
    assert orjson.loads(second.data)["status"] == "processing"
    assert (second.name, second.status, second.task_type) == (
        "task.processing",
        TaskStatus.PROCESSING,
        "compute_sum",
    )
    assert (feed.bus.last_id, feed.bus.delivered) == (2, 2)


async def test_event_of_snapshots_the_task() -> None:
    task = make_task("t", "batch_email")
    event = Event.of(7, "task.queued", task)
    task.status = TaskStatus.FAILED  # a later change does not reach the event
    assert (event.id, event.name, event.task_id, event.task_type, event.status) == (
        7,
        "task.queued",
        "t",
        "batch_email",
        TaskStatus.QUEUED,
    )
    assert orjson.loads(event.data)["status"] == "queued"


def test_an_event_holds_its_data_in_no_more_memory_than_its_length() -> None:
    # Events live on in the history and in subscribers' queues, and the history's byte bound
    # counts len(data): orjson's bytes keep the 4 KiB buffer they were written in.
    task = make_task("t")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        events = [Event.of(n, "task.queued", task) for n in range(1000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    data = sum(len(event.data) for event in events)
    assert held < 2 * data + 1000 * 200, f"{held / 1000:.0f} B per event of {data / 1000:.0f} B"


async def test_a_subscriber_gets_events_delivered_after_it_subscribed_in_order() -> None:
    feed = Feed()
    feed.publish()
    async with feed.bus.subscribe() as subscriber:
        feed.publish("b")
        feed.publish("c")
        assert [e.task_id for e in await take(subscriber, 2)] == ["b", "c"]
        assert queued(subscriber) == []  # and nothing from before it subscribed


@pytest.mark.parametrize(
    ("event_filter", "expected"),
    [
        pytest.param(EventFilter(), ["a", "b", "c"], id="everything"),
        pytest.param(EventFilter(task_id="b"), ["b"], id="task-id"),
        pytest.param(EventFilter(task_types=frozenset({"batch_email"})), ["c"], id="task-type"),
        pytest.param(
            EventFilter(statuses=frozenset({TaskStatus.FAILED, TaskStatus.QUEUED})),
            ["a", "c"],
            id="statuses",
        ),
    ],
)
async def test_filters(event_filter: EventFilter, expected: list[str]) -> None:
    feed = Feed()
    async with feed.bus.subscribe(event_filter) as subscriber:
        feed.publish("a")
        feed.publish("b", TaskStatus.PROCESSING)
        feed.publish("c", TaskStatus.FAILED, task_type="batch_email")
        feed.bus.close()
        assert [e.task_id async for e in subscriber] == expected


async def test_replay_after_an_id_then_live_with_no_gap_or_duplicate() -> None:
    feed = Feed()
    for n in range(5):
        feed.publish(f"t{n}")
    async with feed.bus.subscribe(after=2) as subscriber:
        assert subscriber.resync is False
        feed.publish("t5")
        assert [e.id for e in await take(subscriber, 4)] == [3, 4, 5, 6]


async def test_replay_is_filtered_too() -> None:
    feed = Feed()
    feed.publish("a")
    feed.publish("b")
    feed.publish("a", TaskStatus.PROCESSING)
    async with feed.bus.subscribe(EventFilter(task_id="a"), after=0) as subscriber:
        feed.bus.close()
        assert [e.id async for e in subscriber] == [1, 3]


async def test_drain_takes_the_rest_of_the_replay_then_everything_queued_in_order() -> None:
    feed = Feed()
    for n in range(3):
        feed.publish(f"t{n}")
    async with feed.bus.subscribe(after=0) as subscriber:
        feed.publish("t3")
        feed.publish("t4")
        first = await take(subscriber, 1)
        assert [e.id for e in first + subscriber.drain()] == [1, 2, 3, 4, 5]
        assert subscriber.drain() == []
        feed.publish("t5")
        assert [e.id for e in await take(subscriber, 1)] == [6]  # iteration goes on after it


@pytest.mark.parametrize(
    ("after", "resync", "replayed"),
    [
        pytest.param(4, True, [], id="older-than-the-buffer"),
        pytest.param(5, False, [6, 7, 8], id="just-before-the-oldest-kept"),
        pytest.param(8, False, [], id="the-latest"),
        pytest.param(9, True, [], id="from-the-future"),
    ],
)
async def test_resume_points(after: int, resync: bool, replayed: list[int]) -> None:
    feed = Feed(buffer_size=3)
    for _ in range(8):
        feed.publish()
    page = await feed.bus.history_after(after)
    assert ([e.id for e in page.events], page.resync) == (replayed, resync)
    async with feed.bus.subscribe(after=after) as subscriber:
        feed.bus.close()
        assert subscriber.resync is resync
        assert [e.id async for e in subscriber] == replayed


async def test_a_subscriber_told_to_resync_still_gets_the_live_events() -> None:
    feed = Feed(buffer_size=3)
    for _ in range(8):
        feed.publish()
    async with feed.bus.subscribe(after=1) as subscriber:
        assert subscriber.resync
        feed.publish("live")
        assert [(e.id, e.task_id) for e in await take(subscriber, 1)] == [(9, "live")]


class SlowHistory:
    """An EventRing whose reads answer only when the test says so, to deliver events while a
    subscriber is between registering and reading the history.

    Args:
        snapshot_first: read the ring when asked (so events delivered while it waits are
            live only), rather than when answering (so they are in the history and live both).
    """

    def __init__(self, ring: EventRing, *, snapshot_first: bool) -> None:
        self.ring = ring
        self.snapshot_first = snapshot_first
        self.reading = asyncio.Event()
        self.answer = asyncio.Event()

    async def after(self, event_id: int, limit: int) -> HistoryPage:
        snapshot = await self.ring.after(event_id, limit)
        self.reading.set()
        await self.answer.wait()
        return snapshot if self.snapshot_first else await self.ring.after(event_id, limit)


@pytest.mark.parametrize("snapshot_first", [True, False], ids=["live-only", "in-both"])
async def test_events_delivered_while_the_history_is_read_come_once_at_the_seam(
    snapshot_first: bool,
) -> None:
    ring = EventRing(100, first_id=1)
    history = SlowHistory(ring, snapshot_first=snapshot_first)
    bus = EventBus(history, subscriber_queue=100, last_id=ring.last_id)

    def publish(task_id: str) -> None:
        bus.deliver(ring.record("task.queued", make_task(task_id)))

    for n in range(3):
        publish(f"old{n}")  # ids 1-3

    async def resume() -> list[int]:
        async with bus.subscribe(after=1) as subscriber:
            got = [e.id for e in await take(subscriber, 4)]
            publish("after")
            return got + [e.id for e in await take(subscriber, 1)]

    resuming = asyncio.create_task(resume())
    async with asyncio.timeout(FAILSAFE_S):
        await history.reading.wait()
    publish("meanwhile0")  # ids 4-5: delivered after the subscriber registered
    publish("meanwhile1")
    history.answer.set()
    async with asyncio.timeout(FAILSAFE_S):
        assert await resuming == [2, 3, 4, 5, 6]


async def test_close_ends_subscriptions_after_their_queued_events_and_refuses_new_ones() -> None:
    feed = Feed()
    async with feed.bus.subscribe() as subscriber:
        feed.publish()
        feed.bus.close()
        assert [e.id async for e in subscriber] == [1]
    async with feed.bus.subscribe(after=0) as late:
        assert [e async for e in late] == []


async def test_close_wakes_a_waiting_subscriber() -> None:
    feed = Feed()
    async with feed.bus.subscribe() as subscriber:
        waiting_now = asyncio.Event()

        async def wait_for_one() -> Event:
            waiting_now.set()
            return await anext(subscriber)  # runs on to wait, before the test resumes

        waiting = asyncio.create_task(wait_for_one())
        async with asyncio.timeout(FAILSAFE_S):
            await waiting_now.wait()
        assert not waiting.done()
        feed.bus.close()
        with pytest.raises(StopAsyncIteration):
            async with asyncio.timeout(FAILSAFE_S):
                await waiting


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    feed = Feed(subscriber_queue=3)
    async with feed.bus.subscribe() as slow, feed.bus.subscribe() as fast:
        received = []
        for n in range(10):
            feed.publish(f"t{n}")
            received += [e.id for e in await take(fast, 1)]
        assert received == list(range(1, 11))
        assert slow.overflowed and feed.bus.dropped == 1
        assert [e async for e in slow] == []  # nothing half-delivered: it ends at once
        assert feed.bus.subscriber_count == 1
    assert feed.bus.delivered == 10


async def test_a_subscriber_dropped_mid_replay_ends_without_the_rest_of_it() -> None:
    feed = Feed(subscriber_queue=2)
    for n in range(3):
        feed.publish(f"t{n}")
    async with feed.bus.subscribe(after=0) as subscriber:
        assert [e.id for e in await take(subscriber, 1)] == [1]
        for n in range(3):
            feed.publish(f"live{n}")
        assert subscriber.overflowed
        assert [e async for e in subscriber] == []


async def test_subscribers_to_one_task_are_not_offered_other_tasks_events() -> None:
    feed = Feed(subscriber_queue=1)
    async with feed.bus.subscribe(EventFilter(task_id="mine")) as subscriber:
        for _ in range(5):
            feed.publish("other")
        assert not subscriber.overflowed and queued(subscriber) == []
        feed.publish("mine")
        assert queued(subscriber) == [6]


async def test_leaving_unsubscribes() -> None:
    bus = Feed().bus
    async with (
        bus.subscribe(),
        bus.subscribe(EventFilter(task_id="a")),
        bus.subscribe(EventFilter(task_id="a")),
    ):
        assert bus.subscriber_count == 3
    assert bus.subscriber_count == 0
    assert bus._by_task == {}


# Deadlines: a long-poll's timeout is one entry in the bus's heap, under one timer


async def ends(subscriber: Subscriber, order: list[Subscriber]) -> None:
    """Iterate ``subscriber`` to its end, then note that it ended."""
    async for _ in subscriber:
        pass
    order.append(subscriber)


async def test_subscribers_with_a_deadline_end_in_deadline_order_and_a_later_one_stays() -> None:
    bus = Feed().bus
    order: list[Subscriber] = []
    async with (
        bus.subscribe(for_s=0.03) as third,
        bus.subscribe(for_s=0.01) as first,
        bus.subscribe(for_s=0.02) as second,
        bus.subscribe(for_s=3600) as stays,
        bus.subscribe() as no_deadline,
    ):
        waiting = [asyncio.create_task(ends(s, order)) for s in (third, first, second)]
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.gather(*waiting)
        assert order == [first, second, third]
        assert all(s.timed_out and not s.overflowed for s in order)
        assert not stays.timed_out and not no_deadline.timed_out
        assert len(bus._deadlines) == 1  # the hour-long one, under the one timer
        assert bus._deadlines._timer is not None
        assert bus.subscriber_count == 5  # timed out, but still subscribed until they leave
    assert bus.subscriber_count == 0


async def test_a_subscriber_timed_out_still_gets_what_was_queued_before_its_time_was_up() -> None:
    feed = Feed()
    async with feed.bus.subscribe(for_s=0.001) as subscriber:
        feed.publish()
        ended: list[Subscriber] = []
        async with asyncio.timeout(FAILSAFE_S):
            assert [e.id for e in await take(subscriber, 1)] == [1]
            await ends(subscriber, ended)
        assert subscriber.timed_out


async def leave_at_once(bus: EventBus, count: int) -> None:
    """``count`` subscribers with an hour's deadline, all gone before it."""
    async with contextlib.AsyncExitStack() as leaving:
        for _ in range(count):
            await leaving.enter_async_context(bus.subscribe(for_s=3600))


@pytest.mark.parametrize(("staying", "rebuilt"), [(30, True), (70, False)])
async def test_entries_let_go_are_dropped_at_the_next_add_once_they_are_most_of_the_heap(
    staying: int, rebuilt: bool
) -> None:
    bus = Feed().bus
    async with contextlib.AsyncExitStack() as stay:
        for _ in range(staying):
            await stay.enter_async_context(bus.subscribe(for_s=3600))
        await leave_at_once(bus, 65)
        # Gone at once, as a thousand woken long-polls go: nothing rebuilt, nothing held
        assert len(bus._deadlines) == staying + 65
        assert sum(entry[2] is None for entry in bus._deadlines._heap) == 65
        async with bus.subscribe(for_s=3600):  # 65 of 95 let go: rebuilt; of 135: kept
            assert len(bus._deadlines) == (staying + 1 if rebuilt else staying + 66)
            assert bus._deadlines._timer is not None
    assert bus.subscriber_count == 0


async def test_closing_the_bus_cancels_the_deadline_timer_and_ends_the_subscribers() -> None:
    bus = Feed().bus
    async with bus.subscribe(for_s=3600) as subscriber:
        assert bus._deadlines._timer is not None
        bus.close()
        assert bus._deadlines._timer is None
        async with asyncio.timeout(FAILSAFE_S):
            assert [e async for e in subscriber] == []
        assert not subscriber.timed_out
    async with bus.subscribe(for_s=3600):  # a closed bus gives no deadline
        assert len(bus._deadlines) == 1 and bus._deadlines._timer is None


# Bounded by bytes, replayed page by page


class CountingHistory:
    """An EventRing that counts the pages read from it."""

    def __init__(self, ring: EventRing) -> None:
        self.ring = ring
        self.pages = 0

    async def after(self, event_id: int, limit: int) -> HistoryPage:
        self.pages += 1
        return await self.ring.after(event_id, limit)


async def test_a_long_replay_is_read_from_the_history_a_page_at_a_time() -> None:
    ring = EventRing(10_000, first_id=1)
    for n in range(3 * REPLAY_PAGE + 5):
        ring.record("task.queued", make_task(f"t{n}"))
    history = CountingHistory(ring)
    bus = EventBus(history, subscriber_queue=10, last_id=ring.last_id)
    async with bus.subscribe(after=0) as subscriber:
        assert history.pages == 1  # only the first page is held
        first = subscriber.drain()
        assert [e.id for e in first] == list(range(1, REPLAY_PAGE + 1))
        rest = [await anext(subscriber) for _ in range(2 * REPLAY_PAGE + 5)]
    assert [e.id for e in rest] == list(range(REPLAY_PAGE + 1, 3 * REPLAY_PAGE + 6))
    assert history.pages == 4


async def test_live_events_wait_until_the_replay_is_done_and_none_comes_twice() -> None:
    feed = Feed(buffer_size=10_000, subscriber_queue=10_000)
    for _ in range(REPLAY_PAGE + 3):
        feed.publish("old")
    async with feed.bus.subscribe(after=0) as subscriber:
        live = feed.publish("live")  # in the history and the live queue both
        assert [e.task_id for e in subscriber.drain()] == ["old"] * REPLAY_PAGE  # a page only
        got = [await anext(subscriber) for _ in range(4)]
    assert [e.task_id for e in got] == ["old", "old", "old", "live"]
    assert got[-1].id == live.id


async def test_a_subscriber_the_history_moved_past_while_it_replayed_is_dropped() -> None:
    feed = Feed(buffer_size=REPLAY_PAGE + 10, subscriber_queue=10_000)
    for _ in range(REPLAY_PAGE + 10):
        feed.publish()
    async with feed.bus.subscribe(after=0) as subscriber:
        assert len(subscriber.drain()) == REPLAY_PAGE
        for _ in range(REPLAY_PAGE + 20):  # the rest of the replay is gone before it is read
            feed.publish()
        assert [e async for e in subscriber] == []
    assert subscriber.overflowed
    assert feed.bus.dropped == 1  # counted as a drop, as one that fell behind live


async def test_the_history_keeps_at_most_its_bytes_but_always_the_newest_event() -> None:
    ring = EventRing(1000, first_id=1, max_bytes=1000)
    small = [ring.record("task.queued", make_task("a")) for _ in range(3)]
    size = len(small[0].data)
    assert ring.bytes == 3 * size
    huge = make_task("b")
    huge.parameters = {"string": "x" * 5000}
    newest = ring.record("task.queued", huge)
    assert len(ring) == 1 and ring.bytes == len(newest.data)
    page = await ring.after(newest.id - 1, 10)
    assert page.events == [newest]
    assert (await ring.after(small[-1].id - 1, 10)).resync


async def test_a_subscriber_holding_too_many_bytes_is_dropped() -> None:
    feed = Feed(subscriber_queue=1000, subscriber_bytes=1000)
    async with feed.bus.subscribe() as subscriber:
        sizes = 0
        while not subscriber.overflowed:
            sizes += len(feed.publish().data)
        assert 1000 <= sizes < 1000 + 2 * len(feed.publish().data)
        assert [e async for e in subscriber] == []
    assert feed.bus.dropped == 1
