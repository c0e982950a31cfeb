"""Domain exceptions: what can go wrong with a request for reasons of the service's own rules.

Each carries what its answer needs; ``middleware/errors.py`` turns them into problem JSON.
"""

from __future__ import annotations


class TaskwireError(Exception):
    """Base of the expected errors; anything else reaching a client is a bug (500)."""


class TaskNotFound(TaskwireError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} does not exist or has expired")
        self.task_id = task_id


class TaskConflict(TaskwireError):
    """The task's status does not allow the action (cancel a finished task, retry a live one)."""


class QueueFull(TaskwireError):
    def __init__(self, max_queue: int, retry_after_s: int) -> None:
        super().__init__(f"the queue already holds {max_queue} waiting tasks; try again later")
        self.retry_after_s = retry_after_s


class StoreFull(TaskwireError):
    def __init__(self, max_tasks: int, retry_after_s: int) -> None:
        super().__init__(f"all {max_tasks} tasks held are still queued or processing")
        self.retry_after_s = retry_after_s


class RateLimited(TaskwireError):
    """The request is over its rate limit (counted by the backend with its call: ``RateCheck``)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class LeaseLost(TaskwireError):
    """A worker's claim on a task ran out (another worker may hold it now): its write is refused."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"the lease on task {task_id} was lost")
        self.task_id = task_id


class BackendUnavailable(TaskwireError):
    """The backend (Redis) cannot be reached, or did not answer in time."""

    def __init__(self, backend: str, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(f"the {backend} backend is unavailable: {reason}")
        self.backend = backend
        self.retry_after_s = retry_after_s


class IdempotencyKeyInUse(TaskwireError):
    """A request with this Idempotency-Key is still being handled."""

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still being handled; retry once it is answered"
        )


class IdempotencyKeyMismatch(TaskwireError):
    """The Idempotency-Key was used before with a different body."""

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with a different request body; use a new key for a "
            "new request"
        )


class IdempotentTaskGone(TaskwireError):
    """The task a key's first request created no longer exists (it expired)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task {task_id}, created by the first request with this Idempotency-Key, has "
            "expired; submit it again with a new key"
        )
        self.task_id = task_id
