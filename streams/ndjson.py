"""Task lists as streams: a JSON array or NDJSON, encoded chunk by chunk as they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import orjson

from service.model import Task, task_json

NDJSON = "application/x-ndjson"
CHUNK_TASKS = 256
"""Tasks encoded per chunk: large enough to amortise a send, small enough to start at once."""

Keep = Callable[[Task], bool]


async def json_array(tasks: Sequence[Task], keep: Keep) -> AsyncIterator[bytes]:
    """``[task, task, ...]``; ``keep`` re-checks each task, whose status may have moved on."""
    yield b"["
    separator = b""
    for chunk in _chunks(tasks, keep):
        yield separator + orjson.dumps(chunk, option=orjson.OPT_UTC_Z)[1:-1]
        separator = b","
        await asyncio.sleep(0)  # let other requests in between chunks of a long list
    yield b"]"


async def ndjson_lines(tasks: Sequence[Task], keep: Keep) -> AsyncIterator[bytes]:
    """One task JSON per line."""
    for chunk in _chunks(tasks, keep):
        yield b"".join(task_json(task) + b"\n" for task in chunk)
        await asyncio.sleep(0)


def _chunks(tasks: Sequence[Task], keep: Keep) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), CHUNK_TASKS):
        if kept := [task for task in tasks[start : start + CHUNK_TASKS] if keep(task)]:
            yield kept
