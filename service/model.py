"""The task resource: its fields, its statuses and the only moves between them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from random import getrandbits
from typing import Any, Literal

import orjson

Priority = Literal["low", "normal", "high"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")


class TaskStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


@dataclass(slots=True)
class TaskError:
    type: str
    message: str


@dataclass(slots=True, kw_only=True)
class Task:
    """One submitted job. The field order is the JSON order of the SPEC's task resource.

    orjson encodes this dataclass directly, so every field is public API; runtime state such
    as a job's start time on the event loop lives with the job, not here.
    """

    task_id: str
    task_type: str
    status: TaskStatus = TaskStatus.QUEUED
    priority: Priority = "normal"
    parameters: dict[str, Any] | orjson.Fragment
    """A dict while the task may still run; its JSON once it has completed (see ``pack``)."""
    progress: int = 0
    eta_s: float | None = None
    result: Any = None
    error: TaskError | None = None
    attempt: int = 1
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def start(self, now: datetime, eta_s: float) -> None:
        self._move(TaskStatus.QUEUED, TaskStatus.PROCESSING)
        self.started_at = now
        self.eta_s = eta_s

    def complete(self, result: Any, now: datetime) -> None:
        self._move(TaskStatus.PROCESSING, TaskStatus.COMPLETED)
        self.result = result
        self.progress = 100
        self._finish(now)

    def pack(self) -> None:
        """Hold a completed task's parameters and result as their JSON: it never runs
        again, and ``{"numbers": [1, 2, 3, 4.5]}`` takes ~110 bytes so against ~320 as
        objects (``{"sum": 10.5}``: 80 against 215)."""
        if self.status is TaskStatus.COMPLETED and isinstance(self.parameters, dict):
            self.parameters = _packed(self.parameters)
            if self.result is not None:
                self.result = _packed(self.result)

    def fail(self, error: TaskError, now: datetime) -> None:
        self._move(TaskStatus.PROCESSING, TaskStatus.FAILED)
        self.error = error
        self._finish(now)

    def cancel(self, now: datetime) -> None:
        if self.status.is_finished:
            raise InvalidTransition(self.status, TaskStatus.CANCELLED)
        self.status = TaskStatus.CANCELLED
        self._finish(now)

    def requeue(self) -> None:
        if self.status not in RETRYABLE:
            raise InvalidTransition(self.status, TaskStatus.QUEUED)
        self.status = TaskStatus.QUEUED
        self.attempt += 1
        self.progress = 0
        self.result = self.error = None
        self.started_at = self.finished_at = None

    def _move(self, expected: TaskStatus, to: TaskStatus) -> None:
        if self.status is not expected:
            raise InvalidTransition(self.status, to)
        self.status = to

    def _finish(self, now: datetime) -> None:
        self.eta_s = None
        self.finished_at = now


@dataclass(slots=True, kw_only=True)
class OwnedTask(Task):
    """A task submitted with an API key: ``owner`` is the key's name (the JSON's last field)."""

    owner: str


def owner_of(task: Task) -> str | None:
    """Whose task it is: a key's name, or None where API keys are off."""
    return task.owner if isinstance(task, OwnedTask) else None


_VERSION_4 = (0xF000 << 64) | (0xC << 60)
"""The bits a version 4 UUID fixes: its version nibble and its variant's two bits."""
_VERSION_4_VALUE = (0x4000 << 64) | (0x8 << 60)


def new_task_id() -> str:
    """A random (version 4) UUID, written lowercase with hyphens.

    Its 122 random bits come from ``random``, not ``os.urandom``: an id must be unique, not
    secret (what a client may read is decided by its key, never by knowing an id), and this
    is a quarter of ``str(uuid.uuid4())``'s cost, with no system call. ``random`` is seeded
    from the OS, and again in each forked worker, so processes do not repeat each other.
    """
    digits = "%032x" % (getrandbits(128) & ~_VERSION_4 | _VERSION_4_VALUE)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class InvalidTransition(Exception):
    """A status move the lifecycle does not allow; the engine checks first, so this is a bug."""

    def __init__(self, current: TaskStatus, wanted: TaskStatus) -> None:
        super().__init__(f"cannot move a task from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


def _packed(value: Any) -> orjson.Fragment:
    # An exact copy: orjson's bytes keep the 4 KiB buffer they were written in.
    return orjson.Fragment(bytes(memoryview(orjson.dumps(value))))


def task_json(task: Task) -> bytes:
    """The task resource as JSON: timestamps in RFC 3339 with a ``Z``."""
    return orjson.dumps(task, option=orjson.OPT_UTC_Z)


def task_from_json(data: bytes) -> Task:
    """A task from its JSON (``task_json``'s, or an event's data): an ``OwnedTask`` if it
    names its owner."""
    fields = orjson.loads(data)
    error = fields["error"]
    owned = "owner" in fields
    kind = OwnedTask if owned else Task
    extra = {"owner": fields["owner"]} if owned else {}
    return kind(
        **extra,
        task_id=fields["task_id"],
        task_type=fields["task_type"],
        status=TaskStatus(fields["status"]),
        priority=fields["priority"],
        parameters=fields["parameters"],
        progress=fields["progress"],
        eta_s=fields["eta_s"],
        result=fields["result"],
        error=TaskError(error["type"], error["message"]) if error else None,
        attempt=fields["attempt"],
        created_at=datetime.fromisoformat(fields["created_at"]),
        started_at=_timestamp(fields["started_at"]),
        finished_at=_timestamp(fields["finished_at"]),
    )


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
