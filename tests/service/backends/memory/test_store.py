from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from service.backend import TaskQuery
from service.backends.memory.store import TaskStore
from service.errors import TaskNotFound
from service.model import Task, TaskStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUEUED, FAILED, COMPLETED = TaskStatus.QUEUED, TaskStatus.FAILED, TaskStatus.COMPLETED


def make(n: int, status: TaskStatus = QUEUED, task_type: str = "compute_sum") -> Task:
    return Task(
        task_id=f"t{n}",
        task_type=task_type,
        status=status,
        parameters={},
        created_at=T0 + timedelta(seconds=n),
    )


def finish(store: TaskStore, task: Task, at_s: float) -> None:
    previous = task.status
    task.status = COMPLETED
    task.finished_at = T0 + timedelta(seconds=at_s)
    store.moved(task, previous)


def recount(store: TaskStore) -> Counter[TaskStatus]:
    """The counts by status, counted the slow way."""
    counts = Counter(dict.fromkeys(TaskStatus, 0))
    counts.update(task.status for task in store)
    return counts


def ids(tasks: list[Task]) -> list[str]:
    return [task.task_id for task in tasks]


def test_get_unknown_raises_not_found() -> None:
    with pytest.raises(TaskNotFound):
        TaskStore(10).get("nope")


def test_select_is_newest_first_with_filters_and_limit() -> None:
    store = TaskStore(10)
    for n in range(6):
        store.add(make(n, FAILED if n % 2 else QUEUED))
    store.add(make(6, task_type="batch_email"))
    assert ids(store.select(TaskQuery())) == ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]
    assert ids(store.select(TaskQuery(statuses=frozenset({FAILED})))) == ["t5", "t3", "t1"]
    assert ids(store.select(TaskQuery(task_type="batch_email"))) == ["t6"]
    assert ids(store.select(TaskQuery(limit=2))) == ["t6", "t5"]
    queued_two = TaskQuery(statuses=frozenset({QUEUED}), limit=2)
    assert ids(store.select(queued_two)) == ["t6", "t4"]
    both = TaskQuery(statuses=frozenset({QUEUED}), task_type="compute_sum")
    assert ids(store.select(both)) == ["t4", "t2", "t0"]


def test_a_full_store_evicts_the_task_that_finished_first() -> None:
    store = TaskStore(3)
    tasks = [make(n) for n in range(3)]
    for task in tasks:
        store.add(task)
    finish(store, tasks[2], at_s=10)
    finish(store, tasks[0], at_s=20)
    assert not store.is_full  # a finished task can make room
    assert store.add(make(3)) == [tasks[2]]
    assert store.add(make(4)) == [tasks[0]]
    assert [t.task_id for t in store] == ["t1", "t3", "t4"]
    assert store.is_full
    assert store.counts == recount(store)


def test_a_store_full_of_live_tasks_says_so_and_refuses_more() -> None:
    store = TaskStore(2)
    store.add(make(0))
    assert not store.is_full
    store.add(make(1))
    assert store.is_full
    with pytest.raises(RuntimeError):
        store.add(make(2))
    assert len(store) == 2
    assert store.counts == recount(store)


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
    assert store.counts == recount(store)


def test_a_reopened_task_is_neither_expired_nor_evicted() -> None:
    store = TaskStore(2)
    first, second = make(0), make(1)
    store.add(first)
    store.add(second)
    finish(store, first, at_s=1)
    first.status = QUEUED
    first.finished_at = None
    store.moved(first, COMPLETED)
    assert store.expire(finished_before=T0 + timedelta(days=1)) == []
    assert store.is_full
    assert store.counts == recount(store)


def test_counts_by_status_are_kept_as_tasks_move() -> None:
    store = TaskStore(3)
    tasks = [make(0), make(1, FAILED), make(2, FAILED)]
    for task in tasks:
        store.add(task)
    assert (store.counts[QUEUED], store.counts[FAILED], store.counts[COMPLETED]) == (1, 2, 0)
    tasks[0].status = TaskStatus.PROCESSING
    store.moved(tasks[0], QUEUED)
    finish(store, tasks[0], at_s=1)
    assert (store.counts[QUEUED], store.counts[TaskStatus.PROCESSING]) == (0, 0)
    assert store.counts[COMPLETED] == 1
    store.add(make(3))  # evicts the one finished task
    store.expire(finished_before=T0 + timedelta(days=1))  # nothing else has finished
    assert store.counts == recount(store)
    assert (store.counts[QUEUED], store.counts[FAILED], store.counts[COMPLETED]) == (1, 2, 0)
    assert set(store.counts) == set(TaskStatus)  # every status, zeros included


def test_expire_with_a_limit_removes_the_first_that_finished_and_leaves_the_rest() -> None:
    store = TaskStore(10)
    tasks = [make(n) for n in range(5)]
    for task in tasks:
        store.add(task)
    for at_s, task in enumerate([tasks[3], tasks[0], tasks[4], tasks[1]]):
        finish(store, task, at_s=at_s)
    cutoff = T0 + timedelta(seconds=3)  # before the fourth finish
    assert store.expire(finished_before=cutoff, limit=2) == [tasks[3], tasks[0]]
    assert store.expire(finished_before=cutoff, limit=2) == [tasks[4]]  # the cutoff stops it
    assert store.expire(finished_before=cutoff, limit=2) == []
    assert [t.task_id for t in store] == ["t1", "t2"]
    assert store.counts == recount(store)


def test_a_task_retried_and_finished_again_takes_its_new_place_in_the_finish_order() -> None:
    store = TaskStore(3)
    tasks = [make(n) for n in range(3)]
    for task in tasks:
        store.add(task)
    finish(store, tasks[0], at_s=1)
    finish(store, tasks[1], at_s=2)
    for again_at_s in (3, 4):  # retried twice, each time finishing after the others
        tasks[0].status = QUEUED
        tasks[0].finished_at = None
        store.moved(tasks[0], COMPLETED)
        finish(store, tasks[0], at_s=again_at_s)
    assert store.expire(finished_before=T0 + timedelta(seconds=3.5)) == [tasks[1]]
    finish(store, tasks[2], at_s=5)
    assert store.add(make(3)) == []  # a place was free
    assert store.add(make(4)) == [tasks[0]]  # finished at 4, before the one at 5
    assert store.add(make(5)) == [tasks[2]]
    assert store.is_full
    assert store.counts == recount(store)
