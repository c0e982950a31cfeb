"""The memory backend's event history: ids counted here, the latest events kept for replay."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from service.backends.memory.history import EventRing
from service.events import HistoryPage
from service.model import Task, TaskStatus


def make_task(task_id: str = "a") -> Task:
    return Task(
        task_id=task_id, task_type="compute_sum", parameters={}, created_at=datetime.now(UTC)
    )


def test_ids_strictly_increase_from_the_first_and_events_carry_the_task_json() -> None:
    ring = EventRing(10, first_id=1)
    assert ring.last_id == 0
    task = make_task()
    first = ring.record("task.queued", task)
    task.status = TaskStatus.PROCESSING
    second = ring.record("task.processing", task)
    assert (first.id, second.id, ring.last_id) == (1, 2, 2)
    assert (first.status, orjson.loads(first.data)["status"]) == (TaskStatus.QUEUED, "queued")
    assert orjson.loads(second.data)["status"] == "processing"
    assert second.name == "task.processing"


def test_a_named_event_keeps_its_name_whatever_the_status() -> None:
    event = EventRing(10, first_id=1).record("task.expired", make_task())
    assert (event.name, event.status) == ("task.expired", TaskStatus.QUEUED)


def test_default_first_id_is_later_than_any_id_of_an_earlier_run() -> None:
    earlier = EventRing(10)
    for _ in range(1000):
        earlier.record("task.queued", make_task())
    assert EventRing(10).last_id >= earlier.last_id


def test_only_the_latest_capacity_events_are_kept() -> None:
    ring = EventRing(3, first_id=1)
    for _ in range(8):
        ring.record("task.queued", make_task())
    assert len(ring) == 3


@pytest.mark.parametrize(
    ("after", "resync", "replayed"),
    [
        pytest.param(4, True, [], id="older-than-the-buffer"),
        pytest.param(5, False, [6, 7, 8], id="just-before-the-oldest-kept"),
        pytest.param(7, False, [8], id="inside"),
        pytest.param(8, False, [], id="the-latest"),
        pytest.param(9, True, [], id="from-the-future"),
    ],
)
async def test_after(after: int, resync: bool, replayed: list[int]) -> None:
    ring = EventRing(3, first_id=1)
    for _ in range(8):
        ring.record("task.queued", make_task())
    page = await ring.after(after, limit=10)
    assert ([event.id for event in page.events], page.resync) == (replayed, resync)
    assert not page.more


async def test_an_empty_ring_replays_nothing_after_the_id_before_its_first() -> None:
    ring = EventRing(3, first_id=100)
    assert await ring.after(99, 10) == HistoryPage([], 99, more=False)
    assert (await ring.after(98, 10)).resync
    assert (await ring.after(100, 10)).resync
