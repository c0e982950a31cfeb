"""The JSON the HTTP API answers with, as pydantic models for the OpenAPI document.

Handlers encode tasks straight from the ``Task`` dataclass with orjson; these models describe
that JSON (a test keeps the two in step) and never sit on the request path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from service.model import Priority, TaskStatus
from service.tasktypes import TaskTypeName


class TaskError(BaseModel):
    type: str = Field(examples=["TaskFailedError"])
    message: str


class Task(BaseModel):
    """A task and everything known about its run."""

    task_id: UUID
    task_type: TaskTypeName
    status: TaskStatus
    priority: Priority
    parameters: dict[str, Any] = Field(description="as submitted, after validation")
    progress: int = Field(ge=0, le=100, description="percent of the work done")
    eta_s: float | None = Field(ge=0, description="estimated seconds left while processing")
    result: Any = Field(description="set when completed")
    error: TaskError | None = Field(description="set when failed")
    attempt: int = Field(ge=1, description="1, plus one per retry")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class FieldError(BaseModel):
    in_: Literal["body", "query", "path", "header", "cookie"] = Field(alias="in")
    field: str = Field(description="dotted path of the field inside its location")
    type: str = Field(description="machine-readable kind of error")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["about:blank"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request path")
    request_id: str
    errors: list[FieldError] | None = Field(
        None, description="each invalid field, for validation failures"
    )


class DurationRange(BaseModel):
    min: float
    max: float


class TaskType(BaseModel):
    task_type: TaskTypeName
    description: str
    parameters_schema: dict[str, Any] = Field(description="JSON Schema of `parameters`")
    duration_s: DurationRange = Field(description="base duration, before TASKWIRE_WORK_SCALE")


class Health(BaseModel):
    status: Literal["ok"]
    backend: Literal["memory", "redis"] = Field(description="where state lives")
    tasks: int = Field(description="tasks held")
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    subscribers: int = Field(description="open event subscriptions (streams and long-polls)")


class WatchLine(BaseModel):
    """One line of `GET /tasks?watch=true`: a snapshot, the `synced` marker, or an event."""

    type: str = Field(examples=["snapshot", "synced", "task.completed"])
    id: int | None = Field(None, description="the event id (event lines)")
    task: Task | None = Field(None, description="the task (snapshot and event lines)")


class RunTimes(BaseModel):
    count: int = Field(ge=0, description="tasks of the type that ended in the interval")
    p50: float | None = Field(description="median run time, seconds (a bucket's upper bound)")
    p95: float | None = Field(description="95th percentile run time, seconds")


class Finished(BaseModel):
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)


class StatsInterval(BaseModel):
    start: datetime
    finished: Finished = Field(description="tasks that ended in the interval, by outcome")
    queued: int | None = Field(description="tasks waiting at the interval's end (sampled)")
    processing: int | None = Field(description="tasks processing at the interval's end")
    run_time_s: dict[str, RunTimes] = Field(description="by task type (completed and failed)")


class StatusCounts(BaseModel):
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int


class Stats(BaseModel):
    """The whole service's figures: counts now, and the last 15 minutes, oldest first."""

    interval_s: int
    counts: StatusCounts
    intervals: list[StatsInterval]


class Identity(BaseModel):
    """Who a request is from. With API keys off there is no name, and everyone reaches every
    task; with them on, the key's name, and whether it is an admin's."""

    keys: bool = Field(description="whether the service asks for API keys")
    name: str | None = Field(description="the key's name (a task's `owner`); null with keys off")
    admin: bool = Field(description="whether the request reaches every task")


class TimelineEvent(BaseModel):
    id: int = Field(description="the event's id")
    event: str = Field(examples=["task.failed"])
    at: datetime = Field(description="when it was recorded")
    status: TaskStatus
    attempt: int = Field(ge=1)
    progress: int = Field(ge=0, le=100)
    error: TaskError | None = Field(description="the error of a failed attempt")


class TaskHistory(BaseModel):
    """A task's events still in the history, oldest first: each attempt and how it ended."""

    task_id: UUID
    events: list[TimelineEvent]
