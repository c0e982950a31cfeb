from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from service.backends.memory.queue import TaskQueue
from service.model import Priority, Task


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


def waits(getter: Coroutine[Any, Any, Task]) -> bool:
    """Run ``getter`` on until it must wait; True if it waits, False if it has returned.

    A step by hand, where a task would need the test to yield some number of times and then
    guess that the getter has had its chance.
    """
    try:
        getter.send(None)
    except StopIteration:
        return False
    return True


def result(getter: Coroutine[Any, Any, Task]) -> Task:
    """Run a waiting ``getter`` to its end (what it waits for has happened)."""
    try:
        getter.send(None)
    except StopIteration as done:
        task: Task = done.value
        return task
    getter.close()
    raise AssertionError("the getter is still waiting")


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
    getter = queue.get()
    # The spare permit the discard left makes the getter look once, find nothing and wait.
    assert waits(getter), "the spare permit from the discard produced a task"
    assert len(queue) == 0
    queue.put(make("c"))
    assert result(getter).task_id == "c"
    assert len(queue) == 0
    later = queue.get()
    assert waits(later)  # and no permit is left over either
    later.close()


async def test_a_waiting_getter_gets_the_next_put() -> None:
    queue = TaskQueue(1)
    getter = queue.get()
    assert waits(getter)
    queue.put(make("x"))
    assert result(getter).task_id == "x"
    assert len(queue) == 0
