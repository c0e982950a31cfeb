from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from service.model import Priority, Task
from service.queue import TaskQueue


def make(task_id: str, priority: Priority = "normal") -> Task:
    return Task(
        task_id=task_id,
        task_type="compute_sum",
        priority=priority,
        parameters={},
        created_at=datetime.now(UTC),
    )


async def drain(queue: TaskQueue) -> list[str]:
    return [(await queue.get()).task_id for _ in range(len(queue))]


async def test_high_before_normal_before_low_and_fifo_within_a_priority() -> None:
    queue = TaskQueue(10)
    for task_id, priority in [
        ("l1", "low"),
        ("n1", "normal"),
        ("h1", "high"),
        ("n2", "normal"),
        ("l2", "low"),
        ("h2", "high"),
    ]:
        queue.put(make(task_id, priority))  # type: ignore[arg-type]
    assert await drain(queue) == ["h1", "h2", "n1", "n2", "l1", "l2"]


async def test_full_at_maxsize() -> None:
    queue = TaskQueue(2)
    queue.put(make("a"))
    assert not queue.is_full
    queue.put(make("b"))
    assert queue.is_full
    with pytest.raises(RuntimeError):
        queue.put(make("c"))
    assert len(queue) == 2


async def test_discard_frees_the_place_and_the_getter_skips_it() -> None:
    queue = TaskQueue(2)
    first, second = make("a"), make("b")
    queue.put(first)
    queue.put(second)
    assert queue.discard(first) is True
    assert queue.discard(first) is False
    assert (len(queue), queue.is_full) == (1, False)
    assert (await queue.get()).task_id == "b"
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()  # the spare permit from the discard did not produce a task
    queue.put(make("c"))
    assert (await getter).task_id == "c"


async def test_a_waiting_getter_gets_the_next_put() -> None:
    queue = TaskQueue(1)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put(make("x"))
    assert (await getter).task_id == "x"
    assert len(queue) == 0
