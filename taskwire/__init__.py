"""Taskwire's Python client and ``taskwire`` command line.

    from taskwire import Client

    with Client("http://127.0.0.1:8000") as client:
        task = client.submit("compute_sum", {"numbers": [1, 2, 3.5]}, wait=True)
        print(task.result)  # {'sum': 6.5}

The client speaks HTTP only; it imports nothing of the service.
"""

from taskwire.client import DEFAULT_URL, AsyncClient, Client, default_url
from taskwire.errors import (
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    ProblemError,
    RateLimited,
    ServerError,
    TaskwireError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from taskwire.models import (
    Identity,
    Priority,
    Resync,
    Snapshot,
    StreamItem,
    Synced,
    Task,
    TaskError,
    TaskEvent,
    TaskStatus,
    TaskType,
    WatchItem,
)
from taskwire.retries import RetryPolicy

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "Conflict",
    "FieldError",
    "Identity",
    "InvalidRequest",
    "NotFound",
    "Priority",
    "ProblemError",
    "RateLimited",
    "Resync",
    "RetryPolicy",
    "ServerError",
    "Snapshot",
    "StreamItem",
    "Synced",
    "Task",
    "TaskError",
    "TaskEvent",
    "TaskStatus",
    "TaskType",
    "TaskwireError",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "WatchItem",
    "default_url",
]
