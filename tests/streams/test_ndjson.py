from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

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


@pytest.mark.parametrize("n", [0, 1, CHUNK_TASKS, CHUNK_TASKS + 1, 3 * CHUNK_TASKS])
async def test_array_and_lines_hold_every_task_once_in_order(n: int) -> None:
    listed = tasks(n)
    array = b"".join([chunk async for chunk in json_array(listed, lambda t: True)])
    lines = b"".join([chunk async for chunk in ndjson_lines(listed, lambda t: True)])
    assert [t["task_id"] for t in orjson.loads(array)] == [t.task_id for t in listed]
    assert [orjson.loads(line)["task_id"] for line in lines.splitlines()] == [
        t.task_id for t in listed
    ]


async def test_the_array_is_sent_in_chunks_starting_before_it_is_all_encoded() -> None:
    chunks = json_array(tasks(3 * CHUNK_TASKS), lambda t: True)
    assert await anext(chunks) == b"["
    first = await anext(chunks)
    assert first.count(b'"task_id"') == CHUNK_TASKS
    await chunks.aclose()


async def test_tasks_that_no_longer_match_are_left_out() -> None:
    listed = tasks(4)
    listed[1].status = TaskStatus.PROCESSING
    array = b"".join([c async for c in json_array(listed, lambda t: t.status is TaskStatus.QUEUED)])
    assert [t["task_id"] for t in orjson.loads(array)] == ["t0", "t2", "t3"]
