from __future__ import annotations

import multiprocessing
import uuid
from dataclasses import fields
from datetime import UTC, datetime

import orjson
import pytest

from api import schemas
from service.model import InvalidTransition, Task, TaskError, TaskStatus, new_task_id, task_json

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_task() -> Task:
    return Task(task_id="t", task_type="compute_sum", parameters={}, created_at=NOW)


def test_json_has_the_fields_of_the_documented_schema_in_order() -> None:
    assert [f.name for f in fields(Task)] == list(schemas.Task.model_fields)
    document = orjson.loads(task_json(new_task()))
    assert list(document) == list(schemas.Task.model_fields)
    schemas.Task.model_validate(document | {"task_id": "0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11"})


def test_timestamps_are_rfc3339_utc() -> None:
    assert orjson.loads(task_json(new_task()))["created_at"] == "2026-01-02T03:04:05Z"


def test_a_full_run_sets_each_field_as_it_goes() -> None:
    task = new_task()
    task.start(NOW, eta_s=5.0)
    assert (task.status, task.started_at, task.eta_s) == (TaskStatus.PROCESSING, NOW, 5.0)
    task.complete({"sum": 1}, NOW)
    assert (task.status, task.progress, task.eta_s, task.result) == (
        "completed",
        100,
        None,
        {"sum": 1},
    )
    assert task.finished_at == NOW


def test_retry_clears_the_previous_run_and_counts_the_attempt() -> None:
    task = new_task()
    task.start(NOW, eta_s=1.0)
    task.progress = 40
    task.fail(TaskError("TaskFailedError", "no"), NOW)
    task.requeue()
    assert task.status is TaskStatus.QUEUED
    assert (task.attempt, task.progress, task.error, task.result) == (2, 0, None, None)
    assert task.started_at is None and task.finished_at is None


@pytest.mark.parametrize(
    ("status", "move"),
    [
        pytest.param(TaskStatus.QUEUED, lambda t: t.complete(None, NOW), id="queued-to-completed"),
        pytest.param(
            TaskStatus.QUEUED, lambda t: t.fail(TaskError("E", ""), NOW), id="queued-to-failed"
        ),
        pytest.param(TaskStatus.PROCESSING, lambda t: t.start(NOW, 1.0), id="start-twice"),
        pytest.param(TaskStatus.COMPLETED, lambda t: t.cancel(NOW), id="cancel-completed"),
        pytest.param(TaskStatus.CANCELLED, lambda t: t.cancel(NOW), id="cancel-cancelled"),
        pytest.param(TaskStatus.COMPLETED, lambda t: t.requeue(), id="retry-completed"),
        pytest.param(TaskStatus.PROCESSING, lambda t: t.requeue(), id="retry-processing"),
    ],
)
def test_moves_outside_the_lifecycle_are_refused(status: TaskStatus, move: object) -> None:
    task = new_task()
    task.status = status
    with pytest.raises(InvalidTransition):
        move(task)  # type: ignore[operator]
    assert task.status is status


def test_task_ids_are_version_4_uuids_written_as_the_server_writes_them() -> None:
    ids = [new_task_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids[:1000]:
        parsed = uuid.UUID(task_id)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == task_id  # lowercase, with hyphens


def _ids_in_a_child(results: multiprocessing.Queue[list[str]]) -> None:  # pragma: no cover
    results.put([new_task_id() for _ in range(100)])  # runs in the forked child


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    fork = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[list[str]] = fork.Queue()
    child = fork.Process(target=_ids_in_a_child, args=(results,))
    child.start()
    childs = results.get(timeout=30)
    child.join(timeout=30)
    parents = [new_task_id() for _ in range(100)]
    assert not set(childs) & set(parents)
