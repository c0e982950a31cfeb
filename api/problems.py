"""How Taskwire's own errors are answered: the mapping ``ErrorMiddleware`` is given.

Domain errors come from ``service/errors.py``; request validation errors from FastAPI (and
from ``api/leanroute.py``, which raises the same ones), reworded so a client sees each
invalid field by its place in the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from api.access import Unauthorized
from middleware.problem import Problem
from middleware.ratelimit import QUOTA_EXCEEDED
from service.errors import (
    BackendUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    IdempotentTaskGone,
    QueueFull,
    RateLimited,
    StoreFull,
    TaskConflict,
    TaskNotFound,
)
from service.tasktypes import TASK_TYPES

KEY_MISMATCH = "https://iana.org/assignments/http-problem-types#idempotency-key-mismatch"


def classify(exc: Exception) -> Problem | None:
    match exc:
        case Unauthorized():
            return Problem(
                401,
                "this needs an API key: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": 'Bearer realm="taskwire"'},
            )
        case RequestValidationError():
            errors = [_field_error(error) for error in exc.errors()]
            return Problem(400, _summary(errors), errors=errors)
        case TaskNotFound():
            return Problem(404, str(exc))
        case TaskConflict() | IdempotencyKeyInUse() | IdempotentTaskGone():
            return Problem(409, str(exc))
        case RateLimited(retry_after_s=seconds):
            # Counted by the backend with its call; the rate-limit layer answers in its words.
            return Problem(
                429, str(exc), type=QUOTA_EXCEEDED, headers={"Retry-After": str(seconds)}
            )
        case IdempotencyKeyMismatch():
            return Problem(422, str(exc), type=KEY_MISMATCH)
        case (
            QueueFull(retry_after_s=seconds)
            | StoreFull(retry_after_s=seconds)
            | BackendUnavailable(retry_after_s=seconds)
        ):
            return Problem(503, str(exc), headers={"Retry-After": str(seconds)})
        case _:
            return None


def _field_error(error: Mapping[str, Any]) -> dict[str, Any]:
    where, *path = error["loc"] or ("body",)
    detail = error["msg"]
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        path = ["task_type"]
        detail = "task_type must be one of: " + ", ".join(TASK_TYPES)
    elif error["type"] == "json_invalid":
        path = []
        detail = f"invalid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    elif where == "body" and path and path[0] in TASK_TYPES:
        path = path[1:]  # the discriminated union puts the tag into the location
    return {"in": where, "field": ".".join(map(str, path)), "type": error["type"], "detail": detail}


def _summary(errors: Sequence[Mapping[str, Any]]) -> str:
    fields = sorted({error["field"] or error["in"] for error in errors})
    return f"invalid {', '.join(fields)}"
