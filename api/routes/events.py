"""Server-Sent Events: ``/events`` (every task) and ``/tasks/{task_id}/events`` (one task)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Header, Query
from fastapi.responses import Response

from api import schemas
from api.dependencies import BackendDep, BusDep, ClientDep, SettingsDep
from api.openapi import SSE_DOC, problems
from api.routes import lean_router
from api.routes.tasks import (
    StatusList,
    TaskId,
    TaskIdFilter,
    only_own,
    reachable,
    statuses_of,
)
from service.clock import utc
from service.events import EventFilter
from service.tasktypes import TaskTypeName
from streams.sse import event_stream, has_news, task_stream

router = lean_router()

MAX_ID_DIGITS = 19
"""Event ids are microseconds since the epoch: 16 digits now, and within a signed 64-bit int."""
MAX_EVENT_ID = 10**MAX_ID_DIGITS - 1
"""A larger position is no event's (nor one a Redis stream id can name): a ``resync``."""
LastEventId = Annotated[
    int | None, Query(ge=0, description="resume after this event id (Last-Event-ID wins)")
]
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="sent by EventSource; one that is not an event id gets a `resync`",
    ),
]


def resume_point(query: int | None, header: str | None) -> tuple[int | None, bool]:
    """Where a reconnecting client left off, and whether it sent a position it cannot have.

    The header (sent by EventSource itself) wins over the query. A header that is not an event
    id is not refused: a 400 would make EventSource give up for good, so it is taken as a
    position too old to resume from, and answered with a ``resync``.
    """
    if header is None:
        if query is not None and query > MAX_EVENT_ID:  # no event will ever have it
            return None, True
        return query, False
    header = header.strip()
    if header.isascii() and header.isdigit() and len(header) <= MAX_ID_DIGITS:
        return int(header), False
    return None, True


@router.get(
    "/events",
    response_class=Response,
    responses={200: SSE_DOC, **problems(400, 429, 503)},
    summary="Every task event, as Server-Sent Events",
)
async def events(
    backend: BackendDep,
    bus: BusDep,
    settings: SettingsDep,
    client: ClientDep,
    task_id: TaskIdFilter = None,
    task_type: TaskTypeName | None = None,
    status: StatusList = None,
    last_event_id: LastEventId = None,
    last_event_id_header: LastEventIdHeader = None,
) -> Response:
    event_filter = EventFilter(
        task_id=task_id,
        task_types=frozenset({task_type} if task_type else ()),
        statuses=statuses_of(status),
        owner=only_own(client),
    )
    after, lost = resume_point(last_event_id, last_event_id_header)
    if after is not None:  # the stream starts with the backend's history: a 503 if it is away
        await backend.counts()
    return event_stream(
        bus,
        event_filter,
        after=after,
        lost=lost,
        heartbeat_s=settings.heartbeat_s,
    )


@router.get(
    "/tasks/{task_id}/events",
    response_class=Response,
    responses={
        200: SSE_DOC,
        204: {"description": "A reconnecting client has already seen the task's end"},
        **problems(400, 404, 429, 503),
    },
    summary="One task's events: its current state, then each change until it ends",
)
async def task_events(
    task_id: TaskId,
    backend: BackendDep,
    bus: BusDep,
    settings: SettingsDep,
    client: ClientDep,
    last_event_id: LastEventId = None,
    last_event_id_header: LastEventIdHeader = None,
) -> Response:
    task = await reachable(backend, task_id, client)  # 404 before any stream starts
    after, _ = resume_point(last_event_id, last_event_id_header)
    seen_the_end = (
        after is not None
        and task.status.is_finished
        and not await has_news(bus, task.task_id, after)
    )
    if seen_the_end:  # 204 is how a server tells EventSource to stop reconnecting
        return Response(status_code=204)
    return task_stream(
        backend,
        bus,
        task.task_id,
        heartbeat_s=settings.heartbeat_s,
    )


@router.get(
    "/tasks/{task_id}/history",
    response_model=schemas.TaskHistory,
    responses=problems(400, 404, 429, 503),
    summary="A task's timeline: its events still in the history, with when they happened",
)
async def task_history(task_id: TaskId, backend: BackendDep, client: ClientDep) -> Response:
    await reachable(backend, task_id, client)
    timeline = []
    for event in await backend.task_events(task_id):
        task = orjson.loads(event.data)
        timeline.append(
            {
                "id": event.id,
                "event": event.name,
                "at": utc(event.at),
                "status": task["status"],
                "attempt": task["attempt"],
                "progress": task["progress"],
                "error": task["error"],
            }
        )
    body = {"task_id": task_id, "events": timeline}
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")
