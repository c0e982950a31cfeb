"""Task lists as streams: a JSON array or NDJSON, encoded chunk by chunk as they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import orjson

from service.events import Event, EventBus, EventFilter
from service.model import Task, task_json

NDJSON = "application/x-ndjson"
CHUNK_TASKS = 256
"""Tasks encoded per chunk: large enough to amortise a send, small enough to start at once."""

Keep = Callable[[Task], bool]
Batches = AsyncIterator[Sequence[Task]]


async def json_array(batches: Batches, keep: Keep) -> AsyncIterator[bytes]:
    """``[task, task, ...]``; ``keep`` re-checks each task, whose status may have moved on."""
    yield b"["
    separator = b""
    async for chunk in _chunks(batches, keep):
        yield separator + orjson.dumps(chunk, option=orjson.OPT_UTC_Z)[1:-1]
        separator = b","
    yield b"]"


async def ndjson_lines(batches: Batches, keep: Keep) -> AsyncIterator[bytes]:
    """One task JSON per line."""
    async for chunk in _chunks(batches, keep):
        yield b"".join(task_json(task) + b"\n" for task in chunk)


async def watch(
    bus: EventBus, event_filter: EventFilter, select: Callable[[], Batches], keep: Keep
) -> AsyncIterator[bytes]:
    """The matching tasks as snapshot lines, one ``synced`` line, then every matching event.

    ``select`` runs right after subscribing, so each later change is either in the snapshot
    or among the events. A snapshot line is encoded as it is sent, so it may already show a
    change whose event follows: applied in order, the states converge.
    """
    async with bus.subscribe(event_filter) as subscriber:
        async for chunk in _chunks(select(), keep):
            yield b"".join(b'{"type":"snapshot","task":' + task_json(t) + b"}\n" for t in chunk)
        yield b'{"type":"synced"}\n'
        async for event in subscriber:
            yield b"".join(map(_event_line, [event, *subscriber.drain()]))


async def _chunks(batches: Batches, keep: Keep) -> AsyncIterator[list[Task]]:
    async for batch in batches:
        for chunk in _split(batch, keep):
            yield chunk
            await asyncio.sleep(0)  # let other requests in between chunks of a long list


def _split(tasks: Sequence[Task], keep: Keep) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), CHUNK_TASKS):
        if kept := [task for task in tasks[start : start + CHUNK_TASKS] if keep(task)]:
            yield kept


def _event_line(event: Event) -> bytes:
    return b'{"type":"%s","id":%d,"task":%s}\n' % (event.name.encode(), event.id, event.data)
