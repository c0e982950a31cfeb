from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import orjson
import pytest

from service.backend import TaskPage
from service.model import Task, TaskStatus
from streams.ndjson import CHUNK_TASKS, json_array, ndjson_lines


def tasks(n: int) -> list[Task]:
    return [
        Task(
            task_id=f"t{i}",
            task_type="compute_sum",
            parameters={"i": i},
            created_at=datetime.now(UTC),
        )
        for i in range(n)
    ]


async def batches(listed: Sequence[Task], size: int | None = None) -> AsyncIterator[TaskPage]:
    """``listed`` as a backend's ``select`` gives it: in pages of ``size`` (one by default)."""
    size = size or max(len(listed), 1)
    for start in range(0, len(listed), size):
        yield TaskPage(list(listed[start : start + size]), as_of=0)


def keep_all(task: Task) -> bool:
    return True


async def joined(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.mark.parametrize("batch", [None, 1, 100, CHUNK_TASKS + 7], ids=lambda b: f"batch={b}")
@pytest.mark.parametrize("n", [0, 1, CHUNK_TASKS, CHUNK_TASKS + 1, 3 * CHUNK_TASKS])
async def test_array_and_lines_hold_every_task_once_in_order(n: int, batch: int | None) -> None:
    listed = tasks(n)
    array = await joined(json_array(batches(listed, batch), keep_all))
    lines = await joined(ndjson_lines(batches(listed, batch), keep_all))
    assert [t["task_id"] for t in orjson.loads(array)] == [t.task_id for t in listed]
    assert [orjson.loads(line)["task_id"] for line in lines.splitlines()] == [
        t.task_id for t in listed
    ]
    assert lines == b"" or lines.endswith(b"\n")


async def test_no_batches_at_all_is_an_empty_array_and_no_lines() -> None:
    assert await joined(json_array(batches([]), keep_all)) == b"[]"
    assert await joined(ndjson_lines(batches([]), keep_all)) == b""


async def test_the_array_is_sent_in_chunks_starting_before_it_is_all_encoded() -> None:
    chunks = json_array(batches(tasks(3 * CHUNK_TASKS)), keep_all)
    assert await anext(chunks) == b"["
    first = await anext(chunks)
    assert first.count(b'"task_id"') == CHUNK_TASKS
    await chunks.aclose()


async def test_tasks_that_no_longer_match_are_left_out() -> None:
    listed = tasks(4)
    listed[1].status = TaskStatus.PROCESSING

    def queued(task: Task) -> bool:
        return task.status is TaskStatus.QUEUED

    array = await joined(json_array(batches(listed, 2), queued))
    lines = await joined(ndjson_lines(batches(listed, 2), queued))
    assert [t["task_id"] for t in orjson.loads(array)] == ["t0", "t2", "t3"]
    assert [orjson.loads(line)["task_id"] for line in lines.splitlines()] == ["t0", "t2", "t3"]
