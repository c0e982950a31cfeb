"""Task lists as streams: a JSON array or NDJSON, encoded page by page and sent in writes of
bounded size (``streams/chunks.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

from service.backend import TaskPage
from service.events import Event, EventBus, EventFilter, Subscriber
from service.model import Task, task_json
from streams.chunks import bounded

NDJSON = "application/x-ndjson"

Keep = Callable[[Task], bool]
Pages = AsyncIterator[TaskPage]


async def read_ahead(pages: Pages) -> Pages:
    """The pages, the first one read now: a backend that cannot answer fails the request
    (503) before its answer starts, rather than breaking off a 200 after its first byte."""
    first = await anext(pages, None)

    async def all_pages() -> Pages:
        if first is not None:
            yield first
            async for page in pages:
                yield page

    return all_pages()


async def json_array(pages: Pages, keep: Keep) -> AsyncIterator[bytes]:
    """``[task, task, ...]``; ``keep`` re-checks each task, whose status may have moved on."""
    yield b"["
    first = True

    def pieces(page: TaskPage) -> Iterator[bytes]:
        nonlocal first
        for task in page.tasks:
            if keep(task):
                yield task_json(task) if first else b"," + task_json(task)
                first = False

    async for page in pages:
        async for write in _writes(pieces(page)):
            yield write
    yield b"]"


async def ndjson_lines(pages: Pages, keep: Keep) -> AsyncIterator[bytes]:
    """One task JSON per line."""
    async for page in pages:
        async for write in _writes(task_json(t) + b"\n" for t in page.tasks if keep(t)):
            yield write


async def watch(
    bus: EventBus, event_filter: EventFilter, select: Callable[[], Pages], keep: Keep
) -> AsyncIterator[bytes]:
    """The matching tasks as snapshot lines, one ``synced`` line, then every matching event.

    ``select`` runs right after subscribing, so each later change is either in the snapshot
    or among the events. A snapshot line is encoded as it is sent, so it may already show a
    change whose event follows: applied in order, the states converge.
    """
    async with bus.subscribe(event_filter, kind="watch") as subscriber:
        async for page in _caught_up(select(), subscriber):
            snapshot = (_snapshot_line(task) for task in page.tasks if keep(task))
            async for write in _writes(snapshot):
                yield write
        yield b'{"type":"synced"}\n'
        async for event in subscriber:
            for write in bounded(map(_event_line, [event, *subscriber.drain()])):
                yield write


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


async def _writes(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    """The pieces in writes of bounded size, each encoded as its write is made: a client that
    reads slowly, or leaves, holds one write in memory, not a page of large tasks."""
    for write in bounded(pieces):
        yield write
        await asyncio.sleep(0)  # let other requests in between the writes of a long list


def _snapshot_line(task: Task) -> bytes:
    return b'{"type":"snapshot","task":' + task_json(task) + b"}\n"


def _event_line(event: Event) -> bytes:
    return b'{"type":"%s","id":%d,"task":%s}\n' % (event.name.encode(), event.id, event.data)
