"""What the API returns, typed: tasks, task types, and the items of its streams.

Every class is a frozen dataclass built from the JSON the service sends (``from_json``).
Fields the client does not know yet (a newer service may add some, e.g. ``owner``) are kept in
``extra`` instead of failing, and ``to_json()`` gives back the object exactly as it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """Where a task is: queued → processing → completed | failed | cancelled."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        """Completed, failed or cancelled: nothing more happens unless it is retried."""
        return self in {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


TERMINAL_EVENTS = frozenset({"task.completed", "task.failed", "task.cancelled", "task.expired"})
"""After one of these, a task's own event stream ends."""


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task failed: the error's type (e.g. ``TaskFailedError``) and its message."""

    type: str
    message: str


_TASK_FIELDS = (
    "task_id",
    "task_type",
    "status",
    "priority",
    "parameters",
    "progress",
    "eta_s",
    "result",
    "error",
    "attempt",
    "created_at",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True, kw_only=True)
class Task:
    """The task resource (docs/api.md §1)."""

    task_id: str
    task_type: str
    status: TaskStatus
    priority: Priority
    parameters: Mapping[str, Any]
    progress: int
    eta_s: float | None
    result: Any
    error: TaskError | None
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Fields this client does not know, as sent."""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The JSON object as the service sent it."""

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished

    @property
    def owner(self) -> str | None:
        """The name of the API key that submitted it (only when the service uses keys)."""
        owner = self.extra.get("owner")
        return owner if isinstance(owner, str) else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        error = data.get("error")
        return cls(
            task_id=data["task_id"],
            task_type=data["task_type"],
            status=TaskStatus(data["status"]),
            priority=Priority(data.get("priority", "normal")),
            parameters=data.get("parameters") or {},
            progress=int(data.get("progress", 0)),
            eta_s=data.get("eta_s"),
            result=data.get("result"),
            error=TaskError(str(error.get("type", "")), str(error.get("message", "")))
            if isinstance(error, Mapping)
            else None,
            attempt=int(data.get("attempt", 1)),
            created_at=_timestamp(data["created_at"]),
            started_at=_optional_timestamp(data.get("started_at")),
            finished_at=_optional_timestamp(data.get("finished_at")),
            extra={k: v for k, v in data.items() if k not in _TASK_FIELDS},
            raw=dict(data),
        )

    def to_json(self) -> dict[str, Any]:
        """The task as the service sent it (a JSON-ready dict)."""
        return dict(self.raw)


@dataclass(frozen=True, kw_only=True)
class TaskType:
    """One entry of ``GET /task-types``: what its ``parameters`` must look like."""

    task_type: str
    description: str
    parameters_schema: Mapping[str, Any]
    """The parameters' JSON Schema (an object schema)."""
    min_duration_s: float
    max_duration_s: float
    """Its base duration range, before the service's ``TASKWIRE_WORK_SCALE``."""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskType:
        duration = data.get("duration_s") or {}
        known = {"task_type", "description", "parameters_schema", "duration_s"}
        return cls(
            task_type=data["task_type"],
            description=data.get("description", ""),
            parameters_schema=data.get("parameters_schema") or {},
            min_duration_s=float(duration.get("min", 0.0)),
            max_duration_s=float(duration.get("max", 0.0)),
            extra={k: v for k, v in data.items() if k not in known},
            raw=dict(data),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One change of a task: ``name`` is ``task.queued``, ``task.progress``, ``task.completed``,
    …; ``task`` is the task as it was at that moment; ``id`` increases strictly."""

    id: int
    name: str
    task: Task

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends the task's own stream."""
        return self.name in TERMINAL_EVENTS

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "id": self.id, "task": self.task.to_json()}


@dataclass(frozen=True, slots=True)
class Resync:
    """The stream could not resume where it left off (events were missed): reload what you
    hold (e.g. ``list()``), then carry on with the items that follow.

    ``id`` is the event id the stream carries on from, when the service gave one.
    """

    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": "resync", "id": self.id}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A task as it is when a watch starts (``watch()``): one per matching task."""

    task: Task

    def to_json(self) -> dict[str, Any]:
        return {"type": "snapshot", "task": self.task.to_json()}


@dataclass(frozen=True, slots=True)
class Synced:
    """The watch's snapshot is complete; every item after this is a live event."""

    def to_json(self) -> dict[str, Any]:
        return {"type": "synced"}


StreamItem = TaskEvent | Resync
"""What ``events()`` yields."""
WatchItem = Snapshot | Synced | TaskEvent | Resync
"""What ``watch()`` yields."""


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)  # RFC 3339 with a "Z": Python ≥ 3.11 reads it


def _optional_timestamp(value: str | None) -> datetime | None:
    return None if value is None else _timestamp(value)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the service takes a client for (``GET /whoami``): whether it asks for API keys,
    the key's name (a task's ``owner``), and whether it reaches every task."""

    keys: bool
    name: str | None
    admin: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        return cls(keys=bool(data["keys"]), name=data.get("name"), admin=bool(data["admin"]))
