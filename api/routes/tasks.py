"""``/tasks``: submit, read (and long-poll), list (and watch), cancel and retry tasks."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Body, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from api import schemas
from api.dependencies import BackendDep, BusDep, ClientDep, EngineDep, SettingsDep
from api.idempotency import HEADER, KEY_PATTERN, IdempotentRequest
from api.idempotency import SCOPE_KEY as IDEMPOTENT
from api.negotiation import preferred
from api.openapi import CREATED, CREATED_OR_REPLAYED, NDJSON_LINE, problems
from api.responses import EncodedJSON
from api.routes import lean_router
from middleware.ratelimit import PENDING
from service.access import Client
from service.backend import Backend, RateCheck, TaskQuery
from service.errors import IdempotencyKeyMismatch, IdempotentTaskGone, TaskNotFound
from service.events import EventFilter
from service.idempotency import Idempotency, fingerprint
from service.model import Task, TaskStatus, owner_of, task_json
from service.tasktypes import SubmissionUnion, TaskTypeName
from streams.longpoll import wait_for_status_change
from streams.ndjson import NDJSON, json_array, ndjson_lines, read_ahead, watch

router = lean_router()

_STATUS = "|".join(TaskStatus)
STATUS_LIST = f"^({_STATUS})(,({_STATUS}))*$"
StatusList = Annotated[
    str | None, Query(pattern=STATUS_LIST, description="comma-separated statuses")
]
JSON = "application/json"
REPLAYED = ((b"idempotent-replayed", b"true"),)
LIST_TYPES = (JSON, NDJSON)
"""The representations of ``GET /tasks``, the default first."""
VARY = {"Vary": "Accept"}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


CANONICAL_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CANONICAL = re.compile(CANONICAL_UUID)


def canonical_task_id(value: str) -> str:
    """A task id exactly as the server writes it: other spellings of a UUID (upper case, no
    hyphens, braces, ``urn:uuid:``) are refused, so that each task has one URL."""
    if not _CANONICAL.fullmatch(value):
        raise PydanticCustomError(
            "task_id",
            "a task id is a UUID written as the server writes it: 8-4-4-4-12 lowercase "
            "hexadecimal digits with hyphens",
        )
    return value


_TASK_ID_DOC = "the task's id, as the server wrote it (a lowercase UUID with hyphens)"
_TASK_ID_SCHEMA = {"format": "uuid", "pattern": CANONICAL_UUID}
TaskId = Annotated[
    str,
    AfterValidator(canonical_task_id),
    Path(description=_TASK_ID_DOC, json_schema_extra=_TASK_ID_SCHEMA),
]
TaskIdFilter = Annotated[
    str | None,
    AfterValidator(lambda value: None if value is None else canonical_task_id(value)),
    Query(description=_TASK_ID_DOC, json_schema_extra=_TASK_ID_SCHEMA),
]


async def reachable(
    backend: Backend, task_id: str, client: Client | None, rate: RateCheck | None = None
) -> Task:
    """The task, if the client may reach it; another's task is not found, exactly as if it did
    not exist (a 403 would tell that it does). With ``rate``, the read counts the request."""
    task = await backend.get(task_id, rate=rate)
    if client is not None and not client.may_reach(owner_of(task)):
        raise TaskNotFound(task_id)
    return task


def only_own(client: Client | None) -> str | None:
    """The owner a list or a stream is narrowed to: a non-admin client's own tasks."""
    return None if client is None or client.admin else client.name


def statuses_of(status: str | None) -> frozenset[TaskStatus]:
    return frozenset(map(TaskStatus, status.split(","))) if status else frozenset()


def task_response(
    task: Task, status_code: int = 200, *, created: bool = False, replayed: bool = False
) -> Response:
    return EncodedJSON(
        task_json(task),
        status_code,
        location=f"/tasks/{task.task_id}" if created else None,
        headers=REPLAYED if replayed else (),
    )


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description="makes a retried submit create nothing new: the same key and body "
        "answer the same task again, with `Idempotent-Replayed: true`",
    ),
]


@router.post(
    "/tasks",
    status_code=202,
    response_model=schemas.Task,
    responses={202: CREATED_OR_REPLAYED, **problems(400, 409, 413, 422, 429, 503)},
    summary="Submit a task",
)
async def submit_task(
    submission: Annotated[SubmissionUnion, Body(discriminator="task_type")],
    request: Request,
    engine: EngineDep,
    backend: BackendDep,
    settings: SettingsDep,
    client: ClientDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    owner = None if client is None else client.name
    keyed: IdempotentRequest | None = request.scope.get(IDEMPOTENT)
    if keyed is None:
        rate = request.scope.get(PENDING)  # counted with the submit (counted_by_its_route)
        task = await engine.submit(submission, owner=owner, rate=rate)
        return task_response(task, 202, created=True)
    digest = fingerprint(submission)
    if keyed.record is None:  # the first request with this key: record it with the task
        idempotency = Idempotency(keyed.scope, digest, settings.idempotency_ttl_s)
        task = await engine.submit(submission, owner=owner, idempotency=idempotency)
        return task_response(task, 202, created=True)
    if keyed.record.fingerprint != digest:
        raise IdempotencyKeyMismatch()
    try:
        task = await backend.get(keyed.record.task_id)
    except TaskNotFound:
        raise IdempotentTaskGone(keyed.record.task_id) from None
    request.app.state.metrics.replays.inc()
    return task_response(task, 202, created=True, replayed=True)


@router.get(
    "/tasks/{task_id}",
    response_model=schemas.Task,
    responses=problems(400, 404, 429, 503),
    summary="Read a task, or long-poll until its status changes",
)
async def get_task(
    task_id: TaskId,
    request: Request,
    backend: BackendDep,
    bus: BusDep,
    settings: SettingsDep,
    client: ClientDep,
    wait: Annotated[bool, Query(description="wait for a status change")] = False,
    timeout_s: Annotated[
        float | None,
        Query(
            alias="timeout",
            gt=0,
            allow_inf_nan=False,
            description="seconds to wait at most (with `wait`); default and most: "
            "TASKWIRE_LONG_POLL_MAX",
        ),
    ] = None,
) -> Response:
    longest_s = settings.long_poll_max_s
    if timeout_s is not None and timeout_s > longest_s:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "timeout"),
                    "msg": f"Input should be less than or equal to {longest_s:g}",
                    "input": timeout_s,
                }
            ]
        )
    if not wait:
        rate = request.scope.get(PENDING)  # counted with the read (counted_by_its_route)
        if client is None:  # no keys: every task is everyone's, so its JSON is the answer
            return EncodedJSON(await backend.get_json(task_id, rate=rate))
        return task_response(await reachable(backend, task_id, client, rate))

    def check(task: Task) -> None:
        if client is not None and not client.may_reach(owner_of(task)):
            raise TaskNotFound(task_id)

    answer = await wait_for_status_change(
        backend, bus, task_id, timeout_s or longest_s, check=check
    )
    return EncodedJSON(answer)


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
        **problems(400, 429, 503),
    },
    summary="List tasks",
)
async def list_tasks(
    request: Request,
    backend: BackendDep,
    bus: BusDep,
    client: ClientDep,
    status: StatusList = None,
    task_type: TaskTypeName | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
    watch_: Annotated[
        bool, Query(alias="watch", description="NDJSON: snapshot, `synced`, then live events")
    ] = False,
) -> StreamingResponse:
    owner = only_own(client)
    query = TaskQuery(statuses=statuses_of(status), task_type=task_type, limit=limit, owner=owner)

    def keep(task: Task) -> bool:  # a task's status may move on while the list is sent
        return not query.statuses or task.status in query.statuses

    if watch_:
        event_filter = EventFilter(
            task_types=frozenset({task_type} if task_type else ()),
            statuses=query.statuses,
            owner=owner,
        )
        await backend.counts()  # a backend away is a 503 now, not a 200 that breaks off
        lines = watch(bus, event_filter, lambda: backend.select(query), keep)
        return StreamingResponse(lines, media_type=NDJSON, headers=STREAM_HEADERS)
    batches = await read_ahead(backend.select(query))
    if preferred(request.headers.get("accept"), LIST_TYPES) == NDJSON:
        return StreamingResponse(ndjson_lines(batches, keep), media_type=NDJSON, headers=VARY)
    return StreamingResponse(json_array(batches, keep), media_type=JSON, headers=VARY)


@router.delete(
    "/tasks/{task_id}",
    response_model=schemas.Task,
    responses=problems(400, 404, 409, 429, 503),
    summary="Cancel a queued or processing task",
)
async def cancel_task(
    task_id: TaskId, engine: EngineDep, backend: BackendDep, client: ClientDep
) -> Response:
    await reachable(backend, task_id, client)
    return task_response(await engine.cancel(task_id))


@router.post(
    "/tasks/{task_id}/retry",
    status_code=202,
    response_model=schemas.Task,
    responses={202: CREATED, **problems(400, 404, 409, 429, 503)},
    summary="Queue a failed or cancelled task again",
)
async def retry_task(
    task_id: TaskId, engine: EngineDep, backend: BackendDep, client: ClientDep
) -> Response:
    await reachable(backend, task_id, client)
    return task_response(await engine.retry(task_id), 202, created=True)
