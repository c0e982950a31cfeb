"""Server-Sent Events: bus events as ``id:``/``event:``/``data:`` frames, resumable by id.

The response is sse-starlette's ``EventSourceResponse``: it runs the stream, a heartbeat and a
disconnect listener together and serialises their writes; a client that cannot take a frame in
time is cut off by ``middleware/slowclients.py``. Ending a stream on server shutdown is not
left to its shutdown detection (an import-time patch of uvicorn and a poll); the bus closes on
SIGTERM (see ``api/shutdown.py``), which ends every stream's iteration here within
milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from service.backend import Backend
from service.errors import TaskNotFound
from service.events import EventBus, EventFilter
from service.model import task_json
from streams.chunks import bounded

RETRY_MS = 3000
TERMINAL = frozenset({"task.completed", "task.failed", "task.cancelled", "task.expired"})
"""After one of these, a task has nothing more to say (until someone retries it)."""

_RETRY = b"retry: %d\n\n" % RETRY_MS


def frame(event_id: int, name: str, data: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name.encode(), data)


def event_stream(
    bus: EventBus,
    event_filter: EventFilter,
    *,
    after: int | None,
    lost: bool = False,
    heartbeat_s: float,
) -> EventSourceResponse:
    """Every event matching ``event_filter``; first those after ``after``, if it is given.

    ``lost`` says the client sent a resume point that is not an event id: like one older than
    the history, it is answered with a ``resync``.

    The stream opens with the id it starts from (an ``id:`` line with no data sets the
    client's last event id without firing an event), so a client whose connection drops
    before the first event it wants resumes from there instead of from nothing.
    """

    async def frames() -> AsyncIterator[bytes]:
        async with bus.subscribe(event_filter, after=after, kind="sse") as subscriber:
            start = bus.last_id  # every event after this one reaches the subscriber
            if subscriber.resync or lost:
                yield _RETRY + b"event: resync\nid: %d\ndata: {}\n\n" % start
            elif after is None:
                yield _RETRY + b"id: %d\n\n" % start
            else:
                yield _RETRY  # the client already holds its resume point
            async for event in subscriber:
                # Whatever queued up meanwhile goes out in the same writes: under load a
                # subscriber catches up in a few sends instead of one per event.
                batch = [event, *subscriber.drain()]
                for write in bounded(frame(e.id, e.name, e.data) for e in batch):
                    yield write

    return _response(frames(), heartbeat_s)


def task_stream(
    backend: Backend, bus: EventBus, task_id: str, *, heartbeat_s: float
) -> EventSourceResponse:
    """One task: its current state first, then its events, ending after a terminal one."""

    async def frames() -> AsyncIterator[bytes]:
        async with bus.subscribe(EventFilter(task_id=task_id), kind="sse") as subscriber:
            # Read after subscribing, so no change falls between the state and the events;
            # those the state already shows are dropped, and its id is the last of them.
            try:
                task, as_of = await backend.read(task_id)
            except TaskNotFound:  # removed since the route found it: the stream just ends
                return  # (and a reconnect is answered 404, which stops EventSource)
            subscriber.catch_up(as_of)
            yield _RETRY + frame(as_of, f"task.{task.status}", task_json(task))
            if task.status.is_finished:
                return
            async for event in subscriber:
                batch = [event, *subscriber.drain()]
                ends = next((i for i, e in enumerate(batch) if e.name in TERMINAL), None)
                for write in bounded(
                    frame(e.id, e.name, e.data) for e in batch[: None if ends is None else ends + 1]
                ):
                    yield write
                if ends is not None:
                    return

    return _response(frames(), heartbeat_s)


async def has_news(bus: EventBus, task_id: str, after: int) -> bool:
    """Whether a client that saw every event up to ``after`` has missed one of this task's."""
    while True:
        page = await bus.history_after(after)
        if page.resync or any(event.task_id == task_id for event in page.events):
            return True
        if not page.more:
            return False
        after = page.through


def _response(frames: AsyncIterator[bytes], heartbeat_s: float) -> EventSourceResponse:
    # The send timeout is the slow-client middleware's, which also frees what was buffered
    # (middleware/slowclients.py); sse-starlette's own would only end the stream.
    return EventSourceResponse(frames, ping=heartbeat_s, sep="\n")
