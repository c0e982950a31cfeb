from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import orjson
import pytest

import streams.ndjson
from service.backend import TaskPage
from service.model import Task, TaskStatus
from streams.chunks import WRITE_BYTES, bounded
from streams.ndjson import json_array, ndjson_lines

MANY = 700
"""Tasks enough for several writes (each task's JSON is about 300 bytes)."""


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


@pytest.mark.parametrize("batch", [None, 1, 100, 263], ids=lambda b: f"batch={b}")
@pytest.mark.parametrize("n", [0, 1, 256, 257, MANY])
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


async def test_a_long_list_is_sent_in_writes_of_bounded_size() -> None:
    for stream in (json_array, ndjson_lines):
        writes = [write async for write in stream(batches(tasks(MANY)), keep_all)]
        body = [write for write in writes if write not in (b"[", b"]")]
        assert len(body) > 2
        assert all(len(write) <= WRITE_BYTES for write in body)
        assert all(len(write) > WRITE_BYTES - 1000 for write in body[:-1])  # not needlessly small


@pytest.mark.parametrize(
    ("sizes", "writes"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param([10, 20], [[10, 20]], id="small-together"),
        pytest.param([40, 30, 40], [[40], [30], [40]], id="each-would-overflow"),
        pytest.param([30, 30, 60], [[30, 30], [60]], id="up-to-the-limit"),
        pytest.param([10, 200, 10], [[10], [200], [10]], id="a-larger-piece-alone"),
    ],
)
def test_bounded_joins_pieces_into_writes_up_to_the_limit(
    sizes: list[int], writes: list[list[int]]
) -> None:
    pieces = [bytes([65 + n]) * size for n, size in enumerate(sizes)]
    expected = []
    start = 0
    for group in writes:
        expected.append(b"".join(pieces[start : start + len(group)]))
        start += len(group)
    assert list(bounded(pieces, limit=60)) == expected


async def test_tasks_that_no_longer_match_are_left_out() -> None:
    listed = tasks(4)
    listed[1].status = TaskStatus.PROCESSING

    def queued(task: Task) -> bool:
        return task.status is TaskStatus.QUEUED

    array = await joined(json_array(batches(listed, 2), queued))
    lines = await joined(ndjson_lines(batches(listed, 2), queued))
    assert [t["task_id"] for t in orjson.loads(array)] == ["t0", "t2", "t3"]
    assert [orjson.loads(line)["task_id"] for line in lines.splitlines()] == ["t0", "t2", "t3"]


@pytest.mark.parametrize("encoder", [json_array, ndjson_lines])
async def test_a_page_is_encoded_as_it_is_written_not_all_at_once(
    encoder: Callable[..., AsyncIterator[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page of large tasks, and a client that takes one write and leaves (or reads slowly):
    # what the server holds is that write, not the page's whole JSON (tasks of 1 MiB each,
    # 256 to a page, made 256 MiB).
    encoded = 0
    real = streams.ndjson.task_json

    def counting(task: Task) -> bytes:
        nonlocal encoded
        encoded += 1
        return real(task)

    monkeypatch.setattr(streams.ndjson, "task_json", counting)
    big = tasks(100)
    for task in big:
        task.parameters = {"s": "x" * 20_000}
    writes = encoder(batches(big), keep_all)
    first = await anext(writes)
    if first == b"[":
        first = await anext(writes)
    await writes.aclose()
    per_write = WRITE_BYTES // 20_000 + 1
    assert len(first) <= WRITE_BYTES + 20_100
    assert encoded <= per_write + 1  # the write's tasks, and the one that did not fit
