"""Task lists as streams: a JSON array or NDJSON, encoded chunk by chunk as they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import orjson

from service.model import Task, task_json
from streams.bus import Event, EventBus, EventFilter

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


async def watch(
    bus: EventBus, event_filter: EventFilter, select: Callable[[], Sequence[Task]], keep: Keep
) -> AsyncIterator[bytes]:
    """The matching tasks as snapshot lines, one ``synced`` line, then every matching event.

    ``select`` runs right after subscribing, with no await between, so each later change is
    either in the snapshot or among the events. A snapshot line is encoded as it is sent, so
    it may already show a change whose event follows: applied in order, the states converge.
    """
    async with bus.subscribe(event_filter) as subscriber:
        tasks = select()
        for chunk in _chunks(tasks, keep):
            yield b"".join(b'{"type":"snapshot","task":' + task_json(t) + b"}\n" for t in chunk)
            await asyncio.sleep(0)
        yield b'{"type":"synced"}\n'
        async for event in subscriber:
            yield b"".join(map(_event_line, [event, *subscriber.drain()]))


def _event_line(event: Event) -> bytes:
    return b'{"type":"%s","id":%d,"task":%s}\n' % (event.name.encode(), event.id, event.data)
