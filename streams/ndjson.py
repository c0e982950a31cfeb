"""Task lists as streams: a JSON array or NDJSON, encoded chunk by chunk as they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import orjson

from service.backend import TaskPage
from service.events import Event, EventBus, EventFilter, Subscriber
from service.model import Task, task_json

NDJSON = "application/x-ndjson"
CHUNK_TASKS = 256
"""Tasks encoded per chunk: large enough to amortise a send, small enough to start at once."""

Keep = Callable[[Task], bool]
Pages = AsyncIterator[TaskPage]


async def json_array(pages: Pages, keep: Keep) -> AsyncIterator[bytes]:
    """``[task, task, ...]``; ``keep`` re-checks each task, whose status may have moved on."""
    yield b"["
    separator = b""
    async for chunk in _chunks(pages, keep):
        yield separator + orjson.dumps(chunk, option=orjson.OPT_UTC_Z)[1:-1]
        separator = b","
    yield b"]"


async def ndjson_lines(pages: Pages, keep: Keep) -> AsyncIterator[bytes]:
    """One task JSON per line."""
    async for chunk in _chunks(pages, keep):
        yield b"".join(task_json(task) + b"\n" for task in chunk)


async def watch(
    bus: EventBus, event_filter: EventFilter, select: Callable[[], Pages], keep: Keep
) -> AsyncIterator[bytes]:
    """The matching tasks as snapshot lines, one ``synced`` line, then every matching event.

    ``select`` runs right after subscribing, so each later change is either in the snapshot
    or among the events. A snapshot line is encoded as it is sent, so it may already show a
    change whose event follows: applied in order, the states converge.
    """
    async with bus.subscribe(event_filter) as subscriber:
        async for chunk in _chunks(_caught_up(select(), subscriber), keep):
            yield b"".join(b'{"type":"snapshot","task":' + task_json(t) + b"}\n" for t in chunk)
        yield b'{"type":"synced"}\n'
        async for event in subscriber:
            yield b"".join(map(_event_line, [event, *subscriber.drain()]))


async def _caught_up(pages: Pages, subscriber: Subscriber) -> Pages:
    """The pages, each telling the subscriber which live events its tasks already show."""
    first: int | None = None
    async for page in pages:
        if first is None:  # every event up to here is shown, or concerns no listed task
            first = page.as_of
            subscriber.catch_up(first)
        elif page.as_of > first:  # a page read later shows later events of its tasks
            for task in page.tasks:
                subscriber.catch_up(page.as_of, task.task_id)
        yield page


async def _chunks(pages: Pages, keep: Keep) -> AsyncIterator[list[Task]]:
    async for page in pages:
        for chunk in _split(page.tasks, keep):
            yield chunk
            await asyncio.sleep(0)  # let other requests in between chunks of a long list


def _split(tasks: Sequence[Task], keep: Keep) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), CHUNK_TASKS):
        if kept := [task for task in tasks[start : start + CHUNK_TASKS] if keep(task)]:
            yield kept


def _event_line(event: Event) -> bytes:
    return b'{"type":"%s","id":%d,"task":%s}\n' % (event.name.encode(), event.id, event.data)
