"""HTTP routes: the REST contract, each a thin layer over the engine and the streams."""

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST

from service import schemas
from service.engine import Engine
from service.metrics import render_metrics
from service.model import Task, TaskStatus, task_json
from service.negotiation import preferred
from service.routing import LeanRoute
from service.settings import Settings
from service.tasktypes import TASK_TYPES, SubmissionUnion, TaskTypeName
from streams.bus import EventFilter
from streams.longpoll import wait_for_status_change
from streams.ndjson import NDJSON, json_array, ndjson_lines, watch
from streams.sse import event_stream, has_news, task_stream

_STATUS = "|".join(TaskStatus)
STATUS_LIST = f"^({_STATUS})(,({_STATUS}))*$"


async def get_engine(request: Request) -> Engine:
    # async, so FastAPI calls it inline instead of in a thread
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]
StatusList = Annotated[
    str | None, Query(pattern=STATUS_LIST, description="comma-separated statuses")
]
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
NDJSON_LINE = {
    "anyOf": [{"$ref": "#/components/schemas/Task"}, {"$ref": "#/components/schemas/WatchLine"}]
}
MAX_ID_DIGITS = 19
"""Event ids are microseconds since the epoch: 16 digits now, and within a signed 64-bit int."""
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
JSON = "application/json"
LIST_TYPES = (JSON, NDJSON)
"""The representations of ``GET /tasks``, the default first."""
VARY = {"Vary": "Accept"}
SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "pattern": "^(task\\.[a-z]+|resync)$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/Task"},
                    {"type": "object", "maxProperties": 0},
                ]
            },
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}
SSE_DOC = {
    "content": {"text/event-stream": {"itemSchema": SSE_EVENT}},
    "description": "Each event has an `id:`, an `event:` name and the task JSON as `data:`; "
    "`resync` (data `{}`) says events were missed. The stream starts with `retry: 3000` "
    "and sends a comment heartbeat.",
}


def resume_point(query: int | None, header: str | None) -> tuple[int | None, bool]:
    """Where a reconnecting client left off, and whether it sent a position it cannot have.

    The header (sent by EventSource itself) wins over the query. A header that is not an event
    id is not refused: a 400 would make EventSource give up for good, so it is taken as a
    position too old to resume from, and answered with a ``resync``.
    """
    if header is None:
        return query, False
    header = header.strip()
    if header.isascii() and header.isdigit() and len(header) <= MAX_ID_DIGITS:
        return int(header), False
    return None, True


def _endpoint_name(route: APIRoute) -> str:
    return route.name


def statuses_of(status: str | None) -> frozenset[TaskStatus]:
    return frozenset(map(TaskStatus, status.split(","))) if status else frozenset()


def task_response(task: Task, status_code: int = 200, *, created: bool = False) -> Response:
    headers = {"Location": f"/tasks/{task.task_id}"} if created else None
    return Response(task_json(task), status_code, headers, media_type=JSON)


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type=JSON)


LOCATION = {"Location": {"description": "the task's URL", "schema": {"type": "string"}}}
TASK_ID = {"task_id": "$response.body#/task_id"}
TASK_LINKS = {
    "read": {"operationId": "get_task", "parameters": TASK_ID},
    "cancel": {"operationId": "cancel_task", "parameters": TASK_ID},
    "retry": {"operationId": "retry_task", "parameters": TASK_ID},
    "follow": {"operationId": "task_events", "parameters": TASK_ID},
}
"""What a client can do next with the task in an answer (OpenAPI links)."""
CREATED = {"headers": LOCATION, "links": TASK_LINKS}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers to document; ``service/openapi.py`` gives them the problem JSON body."""
    described = {
        400: "Invalid input (see `errors`)",
        404: "No such task (or it has expired)",
        409: "The task's status does not allow this",
        413: "Body over TASKWIRE_MAX_BODY",
        429: "Rate limit reached",
        503: "Queue or store full",
    }
    docs: dict[int | str, dict[str, Any]] = {
        status: {"description": described[status]} for status in statuses
    }
    for status in {429, 503} & set(statuses):
        docs[status]["headers"] = RETRY_AFTER
    return docs


def build_router(settings: Settings) -> APIRouter:
    """The routes; built per app because some limits in the OpenAPI document are settings."""
    # operationIds are the endpoints' names (get_task, cancel_task, ...), for the links above
    # and for client generators, instead of FastAPI's name-path-method compounds.
    router = APIRouter(route_class=LeanRoute, generate_unique_id_function=_endpoint_name)
    long_poll_max_s = settings.long_poll_max_s

    @router.post(
        "/tasks",
        status_code=202,
        response_model=schemas.Task,
        responses={202: CREATED, **problems(400, 413, 429, 503)},
        summary="Submit a task",
    )
    async def submit_task(
        submission: Annotated[SubmissionUnion, Body(discriminator="task_type")],
        engine: EngineDep,
    ) -> Response:
        return task_response(engine.submit(submission), 202, created=True)

    @router.get(
        "/tasks/{task_id}",
        response_model=schemas.Task,
        responses=problems(400, 404, 429),
        summary="Read a task, or long-poll until its status changes",
    )
    async def get_task(
        task_id: UUID,
        engine: EngineDep,
        wait: Annotated[bool, Query(description="wait for a status change")] = False,
        timeout_s: Annotated[
            float,
            Query(
                alias="timeout",
                gt=0,
                le=long_poll_max_s,
                allow_inf_nan=False,
                description="seconds to wait at most (with `wait`)",
            ),
        ] = long_poll_max_s,
    ) -> Response:
        if wait:
            task = await wait_for_status_change(engine.store, engine.bus, str(task_id), timeout_s)
        else:
            task = engine.store.get(str(task_id))
        return task_response(task)

    @router.get(
        "/tasks",
        response_model=list[schemas.Task],
        responses={
            200: {
                "description": "The matching tasks, newest first: a JSON array, or with "
                "`Accept: application/x-ndjson` one task per line. With `watch=true`: "
                "NDJSON snapshot lines, one `synced` line, then a line per event.",
                "content": {
                    NDJSON: {
                        "schema": {"type": "array", "items": NDJSON_LINE},
                        "itemSchema": NDJSON_LINE,
                    }
                },
            },
            **problems(400, 429),
        },
        summary="List tasks",
    )
    async def list_tasks(
        request: Request,
        engine: EngineDep,
        status: StatusList = None,
        task_type: TaskTypeName | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
        watch_: Annotated[
            bool,
            Query(alias="watch", description="NDJSON: snapshot, `synced`, then live events"),
        ] = False,
    ) -> StreamingResponse:
        statuses = statuses_of(status)

        def select() -> list[Task]:
            return engine.store.select(statuses=statuses, task_type=task_type, limit=limit)

        def keep(task: Task) -> bool:
            return not statuses or task.status in statuses

        if watch_:
            event_filter = EventFilter(
                task_types=frozenset({task_type} if task_type else ()), statuses=statuses
            )
            lines = watch(engine.bus, event_filter, select, keep)
            return StreamingResponse(lines, media_type=NDJSON, headers=STREAM_HEADERS)
        tasks = select()
        if preferred(request.headers.get("accept"), LIST_TYPES) == NDJSON:
            return StreamingResponse(ndjson_lines(tasks, keep), media_type=NDJSON, headers=VARY)
        return StreamingResponse(json_array(tasks, keep), media_type=JSON, headers=VARY)

    @router.delete(
        "/tasks/{task_id}",
        response_model=schemas.Task,
        responses=problems(400, 404, 409, 429),
        summary="Cancel a queued or processing task",
    )
    async def cancel_task(task_id: UUID, engine: EngineDep) -> Response:
        return task_response(await engine.cancel(str(task_id)))

    @router.post(
        "/tasks/{task_id}/retry",
        status_code=202,
        response_model=schemas.Task,
        responses={202: CREATED, **problems(400, 404, 409, 429, 503)},
        summary="Queue a failed or cancelled task again",
    )
    async def retry_task(task_id: UUID, engine: EngineDep) -> Response:
        return task_response(engine.retry(str(task_id)), 202, created=True)

    @router.get(
        "/events",
        response_class=Response,
        responses={200: SSE_DOC, **problems(400, 429)},
        summary="Every task event, as Server-Sent Events",
    )
    async def events(
        engine: EngineDep,
        task_id: UUID | None = None,
        task_type: TaskTypeName | None = None,
        status: StatusList = None,
        last_event_id: LastEventId = None,
        last_event_id_header: LastEventIdHeader = None,
    ) -> Response:
        event_filter = EventFilter(
            task_id=str(task_id) if task_id else None,
            task_types=frozenset({task_type} if task_type else ()),
            statuses=statuses_of(status),
        )
        after, lost = resume_point(last_event_id, last_event_id_header)
        return event_stream(
            engine.bus,
            event_filter,
            after=after,
            lost=lost,
            heartbeat_s=settings.heartbeat_s,
            send_timeout_s=settings.send_timeout_s,
        )

    @router.get(
        "/tasks/{task_id}/events",
        response_class=Response,
        responses={
            200: SSE_DOC,
            204: {"description": "A reconnecting client has already seen the task's end"},
            **problems(400, 404, 429),
        },
        summary="One task's events: its current state, then each change until it ends",
    )
    async def task_events(
        task_id: UUID,
        engine: EngineDep,
        last_event_id: LastEventId = None,
        last_event_id_header: LastEventIdHeader = None,
    ) -> Response:
        task = engine.store.get(str(task_id))
        after, _ = resume_point(last_event_id, last_event_id_header)
        seen_the_end = (
            after is not None
            and task.status.is_finished
            and not has_news(engine.bus, task.task_id, after)
        )
        if seen_the_end:  # 204 is how a server tells EventSource to stop reconnecting
            return Response(status_code=204)
        return task_stream(
            engine.bus,
            task,
            heartbeat_s=settings.heartbeat_s,
            send_timeout_s=settings.send_timeout_s,
        )

    @router.get("/task-types", response_model=list[schemas.TaskType], summary="The task types")
    async def list_task_types() -> Response:
        return json_response(TASK_TYPE_LIST)

    @router.get("/healthz", response_model=schemas.Health, summary="Liveness and counts")
    async def health(engine: EngineDep) -> Response:
        counts = engine.store.count_by_status()
        return json_response(
            {
                "status": "ok",
                "tasks": len(engine.store),
                **{status.value: counts[status] for status in TaskStatus},
                "subscribers": engine.bus.subscriber_count,
            }
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
        summary="Prometheus metrics",
    )
    async def metrics(request: Request) -> Response:
        return Response(render_metrics(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)

    return router


TASK_TYPE_LIST = [
    {
        "task_type": name,
        "description": (params.__doc__ or "").strip(),
        "parameters_schema": params.model_json_schema(),
        "duration_s": {"min": params.duration_s[0], "max": params.duration_s[1]},
    }
    for name, params in TASK_TYPES.items()
]
