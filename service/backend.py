"""The backend seam: everything Taskwire keeps as state, behind one protocol.

The engine decides *what* happens to a task (validation, the work, progress, timeouts); a
backend keeps *where things are*: the tasks, the queue with its cap and priorities, which
worker holds which task, the event history, the rate-limit counters. Each transition below
is one call, and a backend makes it atomic: it checks its preconditions, changes the state
and records the event together (on Redis, one script), so no crash and no other process can
see or split half a transition.

Backends: ``service/backends/memory`` (one process, the reference) and
``service/backends/redis`` (any number of processes on one Redis), chosen by
``TASKWIRE_BACKEND`` through ``service.backends.open_backend``. ``tests/service/backends``
holds the conformance suite that defines correct for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.events import Event, EventBus
from service.idempotency import Idempotency, IdempotencyRecord
from service.model import Task, TaskError, TaskStatus, owner_of
from service.stats import Interval


@dataclass(frozen=True, slots=True)
class Claim:
    """A task a worker has taken: it is ``processing``, and only this claim may end it.

    ``token`` fences the worker's writes: once the lease has been lost (and the task taken
    over by another worker), a write with the old token is refused with ``LeaseLost``.
    """

    task: Task
    token: str


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which tasks a list wants; an empty field matches everything. Newest first."""

    statuses: frozenset[TaskStatus] = frozenset()
    task_type: str | None = None
    limit: int | None = None
    owner: str | None = None
    """Only this owner's tasks (a non-admin API key)."""

    def matches(self, task: Task) -> bool:
        return (
            (not self.statuses or task.status in self.statuses)
            and (self.task_type is None or task.task_type == self.task_type)
            and (self.owner is None or owner_of(task) == self.owner)
        )


@dataclass(frozen=True, slots=True)
class TaskPage:
    """Some tasks of a list, and ``as_of``: the latest event their state already shows."""

    tasks: Sequence[Task]
    as_of: int


@dataclass(frozen=True, slots=True)
class Cancelling:
    """What a cancel found: a task already ``cancelled`` (it was queued), or one running."""

    task: Task
    running: bool
    """True if the task is processing: its worker must stop it and record the end."""


class RateCounter(Protocol):
    """Requests per key in a sliding window; ``hit`` counts one and says if it is allowed."""

    @property
    def limit(self) -> int: ...

    @property
    def window_s(self) -> int: ...

    async def hit(self, key: str) -> tuple[bool, int, int]:
        """``(allowed, remaining, reset_s)``: whether this request is within the limit, how
        many more the window allows, and whole seconds until the oldest counted one leaves."""
        ...


class RateCheck(Protocol):
    """One request's rate-limit count, left to the backend to make in the same step as the
    call it comes with: on Redis, one round trip for both instead of two.

    The backend counts the request against ``key`` (``limit`` per ``window_s``, as the
    ``RateCounter`` of the same settings does) before anything else, tells ``decide`` the
    outcome, and if it is refused raises ``RateLimited`` without making the call.
    """

    @property
    def key(self) -> str: ...

    @property
    def limit(self) -> int: ...

    @property
    def window_s(self) -> int: ...

    def decide(self, allowed: bool, remaining: int, reset_s: int) -> None: ...


class Backend(Protocol):
    """Where tasks, the queue, leases, events and rate-limit counters live."""

    name: str
    """What kind it is (``memory``, ``redis``), for health answers and logs."""

    bus: EventBus
    """This process's delivery of every event the backend records, in id order."""

    lease_s: float | None
    """How long a claim holds without ``renew``; None where a claim cannot be lost."""

    async def start(self) -> None:
        """Connect, and start delivering events to ``bus``."""

    async def close(self) -> None:
        """Stop delivering events and let go of connections (state is kept)."""

    def on_cancel(self, stop: Callable[[str], object]) -> None:
        """Have ``stop(task_id)`` called when a processing task is to be cancelled: its worker,
        if it runs in this process, must stop it and record the end."""

    # Reads

    async def get(self, task_id: str, *, rate: RateCheck | None = None) -> Task:
        """The task, or ``TaskNotFound``; with ``rate``, after counting the request (whether
        or not the task exists)."""

    async def get_json(self, task_id: str, *, rate: RateCheck | None = None) -> bytes:
        """The task as ``task_json`` writes it, counted and not found as ``get``: what a read
        answers. A backend that holds a task's JSON answers with it as held, where ``get``
        decodes it into a ``Task`` for the route to encode again."""

    async def read(self, task_id: str) -> tuple[Task, int]:
        """The task, and the id of the latest event its state already shows: a subscriber
        that reads after subscribing drops the events up to it (``Subscriber.catch_up``)."""

    def select(self, query: TaskQuery) -> AsyncIterator[TaskPage]:
        """The matching tasks, newest first, in pages."""

    async def counts(self) -> Mapping[TaskStatus, int]:
        """How many tasks are held in each status, in O(1)."""

    # Transitions: each is atomic and records its events.

    async def submit(
        self,
        task: Task,
        *,
        planned_s: float,
        idempotency: Idempotency | None = None,
        rate: RateCheck | None = None,
    ) -> Task:
        """Store ``task`` and queue it (``task.queued``); ``planned_s`` is its run's expected
        length, for ``eta_s``. Finished tasks are evicted (``task.expired``) to make room.
        ``QueueFull`` or ``StoreFull`` when there is none. With ``idempotency``, its key is
        recorded, with the task, in the same step; with ``rate``, the request is counted
        first, in the same step."""

    async def claim(self) -> Claim:
        """Wait for a queued task this worker may run, and move it to ``processing``."""

    async def progress(self, claim: Claim, *, percent: int, eta_s: float) -> None:
        """Record progress (``task.progress``)."""

    async def finish(
        self,
        claim: Claim,
        status: TaskStatus,
        *,
        result: Any = None,
        error: TaskError | None = None,
        then_claim: bool = False,
    ) -> Task:
        """End a claimed task as ``completed`` (with ``result``), ``failed`` (with
        ``error``) or ``cancelled``. With ``then_claim`` (its worker is free for the next),
        a backend may also claim the next queued task in the same step, for this process's
        next ``claim`` to return."""

    async def release(self, claim: Claim) -> Task:
        """Give up a claim because this worker is stopping: the task goes back to the queue
        as its next attempt (``task.queued``) where the backend outlives this process, and
        ends ``cancelled`` where it does not (memory)."""

    async def renew(self, claim: Claim) -> None:
        """Extend the claim's lease; ``LeaseLost`` if it has already run out."""

    async def cancel(self, task_id: str) -> Cancelling:
        """Cancel a queued task at once (``task.cancelled``), or have the worker of a
        processing one stop it (see ``on_cancel``). ``TaskConflict`` for a finished task."""

    async def retry(self, task_id: str) -> Task:
        """Queue a failed or cancelled task again as its next attempt (``task.queued``).
        ``TaskConflict`` for any other status, ``QueueFull`` when there is no room."""

    async def sweep(self, *, ttl_s: float) -> int:
        """Remove the tasks finished more than ``ttl_s`` ago (``task.expired`` each), and
        return lost claims to the queue; returns how many tasks were removed."""

    async def begin_idempotent(
        self, scope: str, in_flight_ttl_s: float
    ) -> IdempotencyRecord | None:
        """The record of the scoped key, or None after marking it in flight (it was unused)."""

    async def abandon_idempotent(self, scope: str) -> None:
        """Forget a key that is still in flight: its request was refused, and may be sent
        again with it."""

    # The last 15 minutes (``service/stats.py``)

    async def sample(self) -> None:
        """Note the queue depth and the tasks processing in the current interval (each
        finish and cancel is noted by its transition)."""

    async def stats(self) -> list[Interval]:
        """The last 15 minutes, interval by interval, oldest first."""

    async def task_events(self, task_id: str) -> list[Event]:
        """The task's events still in the history, oldest first (a task's timeline)."""

    async def event_counts(self) -> Mapping[str, int]:
        """Events recorded so far, by name, across the whole service."""

    async def elect(self, role: str, holder: str, ttl_s: float) -> bool:
        """Whether ``holder`` holds ``role`` in the service (taking it if nobody does), for
        ``ttl_s`` more: one process (or process group) at a time does what the role says."""

    # Limits

    def rate_counter(self, *, limit: int, window_s: int) -> RateCounter:
        """A sliding-window request counter kept with the rest of the state; a ``RateCheck``
        of the same settings counts in the same windows."""
