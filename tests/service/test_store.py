from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.errors import TaskNotFound
from service.model import Task, TaskStatus
from service.store import TaskStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make(n: int, status: TaskStatus = TaskStatus.QUEUED, task_type: str = "compute_sum") -> Task:
    return Task(
        task_id=f"t{n}",
        task_type=task_type,
        status=status,
        parameters={},
        created_at=T0 + timedelta(seconds=n),
    )


def finish(store: TaskStore, task: Task, at_s: float) -> None:
    task.status = TaskStatus.COMPLETED
    task.finished_at = T0 + timedelta(seconds=at_s)
    store.finished(task)


def test_get_unknown_raises_not_found() -> None:
    with pytest.raises(TaskNotFound):
        TaskStore(10).get("nope")


def test_select_is_newest_first_with_filters_and_limit() -> None:
    store = TaskStore(10)
    for n in range(6):
        store.add(make(n, TaskStatus.FAILED if n % 2 else TaskStatus.QUEUED))
    store.add(make(6, task_type="batch_email"))
    assert [t.task_id for t in store.select()] == ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]
    assert [t.task_id for t in store.select(statuses={TaskStatus.FAILED})] == ["t5", "t3", "t1"]
    assert [t.task_id for t in store.select(task_type="batch_email")] == ["t6"]
    assert [t.task_id for t in store.select(limit=2)] == ["t6", "t5"]
    assert [t.task_id for t in store.select(statuses={TaskStatus.QUEUED}, limit=2)] == ["t6", "t4"]


def test_a_full_store_evicts_the_task_that_finished_first() -> None:
    store = TaskStore(3)
    tasks = [make(n) for n in range(3)]
    for task in tasks:
        store.add(task)
    finish(store, tasks[2], at_s=10)
    finish(store, tasks[0], at_s=20)
    assert store.add(make(3)) == [tasks[2]]
    assert store.add(make(4)) == [tasks[0]]
    assert [t.task_id for t in store] == ["t1", "t3", "t4"]


def test_a_store_full_of_live_tasks_says_so_and_refuses_more() -> None:
    store = TaskStore(2)
    store.add(make(0))
    assert not store.is_full
    store.add(make(1))
    assert store.is_full
    with pytest.raises(RuntimeError):
        store.add(make(2))
    assert len(store) == 2


def test_expire_removes_only_tasks_finished_before_the_cutoff() -> None:
    store = TaskStore(10)
    tasks = [make(n) for n in range(4)]
    for task in tasks:
        store.add(task)
    finish(store, tasks[0], at_s=5)
    finish(store, tasks[1], at_s=10)
    finish(store, tasks[3], at_s=20)
    assert store.expire(finished_before=T0 + timedelta(seconds=10)) == [tasks[0]]
    assert store.expire(finished_before=T0 + timedelta(seconds=10.5)) == [tasks[1]]
    assert [t.task_id for t in store] == ["t2", "t3"]


def test_a_reopened_task_is_neither_expired_nor_evicted() -> None:
    store = TaskStore(2)
    first, second = make(0), make(1)
    store.add(first)
    store.add(second)
    finish(store, first, at_s=1)
    first.status = TaskStatus.QUEUED
    store.reopened(first)
    assert store.expire(finished_before=T0 + timedelta(days=1)) == []
    assert store.is_full


def test_count_by_status() -> None:
    store = TaskStore(10)
    store.add(make(0))
    store.add(make(1, TaskStatus.FAILED))
    store.add(make(2, TaskStatus.FAILED))
    counts = store.count_by_status()
    assert (counts[TaskStatus.QUEUED], counts[TaskStatus.FAILED], counts[TaskStatus.COMPLETED]) == (
        1,
        2,
        0,
    )
