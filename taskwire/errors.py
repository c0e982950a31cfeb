"""What the client raises: the service's RFC 9457 problem details, typed by status.

TaskwireError
├── TransportError          the service could not be reached (after the retries)
└── ProblemError            the service answered with an error (problem details)
    ├── InvalidRequest      400, 413, 422: the request itself is wrong; see ``errors``
    ├── Unauthorized        401: no valid API key (``api_key=``, or ``TASKWIRE_API_KEY``)
    ├── NotFound            404: no such task (or it has expired)
    ├── Conflict            409: not in a state for that (cancel a finished task, …)
    ├── RateLimited         429: see ``retry_after_s``
    ├── Unavailable         503: queue or store full, backend down; see ``retry_after_s``
    └── ServerError         500 and any other 5xx
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


class TaskwireError(Exception):
    """Anything the client raises on purpose."""


class TransportError(TaskwireError):
    """No answer from the service: connection refused, reset, timed out (after the retries
    the request allowed). The ``httpx`` error is the ``__cause__``."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a 400: where (``body``, ``query``, ``path``, ``header``), which
    field (``parameters.numbers``), the kind of error, and what is wrong, in words."""

    location: str
    field: str
    type: str
    detail: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldError:
        return cls(
            location=str(data.get("in", "")),
            field=str(data.get("field", "")),
            type=str(data.get("type", "")),
            detail=str(data.get("detail", "")),
        )


class ProblemError(TaskwireError):
    """An error answer. Its attributes are the problem details' members."""

    def __init__(
        self,
        *,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str = "",
        instance: str | None = None,
        request_id: str | None = None,
        errors: tuple[FieldError, ...] = (),
        retry_after_s: float | None = None,
        body: Mapping[str, Any] | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.request_id = request_id
        self.errors = errors
        self.retry_after_s = retry_after_s
        """Seconds the service asked us to wait (``Retry-After``), on a 429 or a 503."""
        self.body: Mapping[str, Any] = body or {}
        """The problem JSON as sent (empty if the answer was not problem JSON)."""
        self.attempts = attempts
        """How many requests were made before giving up (1 plus the retries)."""
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.status} {self.title}".strip()
        if self.detail:
            text += f": {self.detail}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The problem details, plus ``retry_after_s`` when the service sent one."""
        problem: dict[str, Any] = dict(self.body) or {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": self.instance,
            "request_id": self.request_id,
        }
        if self.retry_after_s is not None:
            problem["retry_after_s"] = self.retry_after_s
        return problem


class InvalidRequest(ProblemError):
    """400 (see ``errors`` for each invalid field), 413 (body too large), 422 (an
    Idempotency-Key reused with a different body)."""


class Unauthorized(ProblemError):
    """401: the service asks for an API key, and none, or a wrong one, was sent."""


class NotFound(ProblemError):
    """404: no such task, or it has expired."""


class Conflict(ProblemError):
    """409: the task is not in a state for that, or the Idempotency-Key is in use."""


class RateLimited(ProblemError):
    """429: too many requests; try again in ``retry_after_s`` seconds."""


class Unavailable(ProblemError):
    """503: the queue or the store is full, or the backend is down; ``retry_after_s``."""


class ServerError(ProblemError):
    """500 or another 5xx: the service failed (its log has the ``request_id``)."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def retry_after_s(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of an answer in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def problem_of(response: httpx.Response, *, attempts: int = 1) -> ProblemError:
    """The exception for an error answer (its body must have been read)."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(response.content) if response.content else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        body = parsed
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ProblemError)
    raw_errors = body.get("errors")
    errors = tuple(FieldError.from_json(e) for e in raw_errors or () if isinstance(e, Mapping))
    return cls(
        status=status,
        type=str(body.get("type", "about:blank")),
        title=str(body.get("title") or response.reason_phrase),
        detail=str(body.get("detail") or ("" if body else response.text[:200].strip())),
        instance=body.get("instance"),
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        errors=errors,
        retry_after_s=retry_after_s(response),
        body=body,
        attempts=attempts,
    )
