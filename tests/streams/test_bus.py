from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from service.model import Task, TaskStatus
from streams.bus import Event, EventBus, EventFilter, Subscriber


def make_task(task_id: str = "a", task_type: str = "compute_sum") -> Task:
    return Task(task_id=task_id, task_type=task_type, parameters={}, created_at=datetime.now(UTC))


def publish(
    bus: EventBus,
    task_id: str = "a",
    status: TaskStatus = TaskStatus.QUEUED,
    task_type: str = "compute_sum",
) -> Event:
    task = make_task(task_id, task_type)
    task.status = status
    return bus.publish(f"task.{status}", task)


def queued(subscriber: Subscriber) -> list[int]:
    """The ids a subscriber would deliver right now, without waiting."""
    return [event.id for event in subscriber._queue]


async def take(subscriber: Subscriber, n: int) -> list[Event]:
    async with asyncio.timeout(5):
        return [await anext(subscriber) for _ in range(n)]


def new_bus(**overrides: int) -> EventBus:
    return EventBus(**{"buffer_size": 100, "subscriber_queue": 100, "first_id": 1, **overrides})


async def test_ids_strictly_increase_and_events_carry_the_task_json() -> None:
    bus = new_bus()
    first, second = publish(bus), publish(bus, status=TaskStatus.PROCESSING)
    assert (first.id, second.id) == (1, 2)
    assert orjson.loads(second.data)["status"] == "processing"
    assert second.name == "task.processing"


async def test_default_first_id_is_later_than_any_id_of_an_earlier_run() -> None:
    earlier = EventBus(buffer_size=10, subscriber_queue=10)
    for _ in range(1000):
        publish(earlier)
    assert EventBus(buffer_size=10, subscriber_queue=10).last_id >= earlier.last_id


async def test_a_subscriber_gets_events_published_after_it_subscribed_in_order() -> None:
    bus = new_bus()
    publish(bus)
    async with bus.subscribe() as subscriber:
        publish(bus, "b")
        publish(bus, "c")
        assert [e.task_id for e in await take(subscriber, 2)] == ["b", "c"]


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
    bus = new_bus()
    async with bus.subscribe(event_filter) as subscriber:
        publish(bus, "a")
        publish(bus, "b", TaskStatus.PROCESSING)
        publish(bus, "c", TaskStatus.FAILED, task_type="batch_email")
        bus.close()
        assert [e.task_id async for e in subscriber] == expected


async def test_replay_after_an_id_then_live_with_no_gap_or_duplicate() -> None:
    bus = new_bus()
    for n in range(5):
        publish(bus, f"t{n}")
    async with bus.subscribe(after=2) as subscriber:
        assert subscriber.resync is False
        publish(bus, "t5")
        assert [e.id for e in await take(subscriber, 4)] == [3, 4, 5, 6]


async def test_replay_is_filtered_too() -> None:
    bus = new_bus()
    publish(bus, "a")
    publish(bus, "b")
    publish(bus, "a", TaskStatus.PROCESSING)
    async with bus.subscribe(EventFilter(task_id="a"), after=0) as subscriber:
        bus.close()
        assert [e.id async for e in subscriber] == [1, 3]


async def test_drain_takes_the_rest_of_the_replay_then_everything_queued_in_order() -> None:
    bus = new_bus()
    for n in range(3):
        publish(bus, f"t{n}")
    async with bus.subscribe(after=0) as subscriber:
        publish(bus, "t3")
        publish(bus, "t4")
        first = await take(subscriber, 1)
        assert [e.id for e in first + subscriber.drain()] == [1, 2, 3, 4, 5]
        assert subscriber.drain() == []
        publish(bus, "t5")
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
    bus = new_bus(buffer_size=3)
    for _ in range(8):
        publish(bus)
    async with bus.subscribe(after=after) as subscriber:
        bus.close()
        assert subscriber.resync is resync
        assert [e.id async for e in subscriber] == replayed


async def test_close_ends_subscriptions_after_their_queued_events_and_refuses_new_ones() -> None:
    bus = new_bus()
    async with bus.subscribe() as subscriber:
        publish(bus)
        bus.close()
        assert [e.id async for e in subscriber] == [1]
    async with bus.subscribe(after=0) as late:
        assert [e async for e in late] == []


async def test_close_wakes_a_waiting_subscriber() -> None:
    bus = new_bus()
    async with bus.subscribe() as subscriber:
        waiting = asyncio.create_task(anext(subscriber))
        await asyncio.sleep(0)
        bus.close()
        with pytest.raises(StopAsyncIteration):
            await waiting


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    bus = new_bus(subscriber_queue=3)
    async with bus.subscribe() as slow, bus.subscribe() as fast:
        received = []
        for n in range(10):
            publish(bus, f"t{n}")
            received += [e.id for e in await take(fast, 1)]
        assert received == list(range(1, 11))
        assert slow.overflowed and bus.dropped == 1
        assert [e async for e in slow] == []  # nothing half-delivered: it ends at once
        assert bus.subscriber_count == 1


async def test_subscribers_to_one_task_are_not_offered_other_tasks_events() -> None:
    bus = new_bus(subscriber_queue=1)
    async with bus.subscribe(EventFilter(task_id="mine")) as subscriber:
        for _ in range(5):
            publish(bus, "other")
        assert not subscriber.overflowed and queued(subscriber) == []
        publish(bus, "mine")
        assert queued(subscriber) == [6]


async def test_leaving_unsubscribes() -> None:
    bus = new_bus()
    async with (
        bus.subscribe(),
        bus.subscribe(EventFilter(task_id="a")),
        bus.subscribe(EventFilter(task_id="a")),
    ):
        assert bus.subscriber_count == 3
    assert bus.subscriber_count == 0
    assert bus._by_task == {}
