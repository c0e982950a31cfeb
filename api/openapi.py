"""The OpenAPI document: FastAPI's, with every error answer described as problem JSON.

FastAPI documents extra responses under the route's media type and adds a 422 to every
route with parameters. Taskwire answers errors as ``application/problem+json`` and never
with 422, so the generated document is corrected here, once, instead of on every route.
The pieces routes declare (error answers, links, the SSE event schema) live here too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.schemas import Problem, WatchLine
from middleware.problem import PROBLEM_JSON

REF = "#/components/schemas/{model}"

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
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this answers a retry with an Idempotency-Key already used",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
CREATED_OR_REPLAYED = {"headers": {**LOCATION, **REPLAYED}, "links": TASK_LINKS}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}

NDJSON_LINE = {
    "anyOf": [{"$ref": "#/components/schemas/Task"}, {"$ref": "#/components/schemas/WatchLine"}]
}
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

_DESCRIBED = {
    400: "Invalid input (see `errors`)",
    404: "No such task (or it has expired)",
    409: "The task's status does not allow this; or (a submit) its Idempotency-Key's first "
    "request is still being handled, or created a task that has since expired",
    413: "Body over TASKWIRE_MAX_BODY",
    422: "The Idempotency-Key was used before with a different body",
    429: "Rate limit reached",
    503: "Queue or store full, or the backend (Redis) unreachable",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers to document; ``problem_openapi`` gives them the problem JSON body."""
    docs: dict[int | str, dict[str, Any]] = {
        status: {"description": _DESCRIBED[status]} for status in statuses
    }
    for status in {429, 503} & set(statuses):
        docs[status]["headers"] = RETRY_AFTER
    return docs


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
    "accessToken": {
        "type": "apiKey",
        "in": "query",
        "name": "access_token",
        "description": "an API key, for EventSource, which cannot send headers (SSE only)",
    },
}
OPEN_PATHS = frozenset({"/healthz"})
"""Operations that need no API key even when keys are on (/metrics: a setting says)."""


def problem_openapi(
    app: FastAPI, *, long_poll_max_s: float, keys: bool = False, metrics_open: bool = True
) -> dict[str, Any]:
    """The document, built once. Settings the routes, declared at import, cannot state are
    written in here: ``long_poll_max_s`` into the ``timeout`` parameter, and, when API keys
    are on (``keys``), the bearer scheme and a 401 on every operation that needs one."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for model in (Problem, WatchLine):  # referred to by hand, so FastAPI does not add them
            schema = model.model_json_schema(ref_template=REF, by_alias=True)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        open_paths = OPEN_PATHS | ({"/metrics"} if metrics_open else set())
        if keys:
            document["components"]["securitySchemes"] = SECURITY_SCHEMES
            for path, item in document.get("paths", {}).items():
                if path not in open_paths:
                    for operation in item.values():
                        _needs_a_key(operation, sse=path.endswith("/events"))
        for operation in _operations(document):
            _describe_errors(operation["responses"])
            for parameter in operation.get("parameters", ()):
                _not_nullable(parameter["schema"])
                if parameter["name"] == "timeout":
                    parameter["schema"].update(maximum=long_poll_max_s, default=long_poll_max_s)
        app.openapi_schema = document
    return app.openapi_schema


def _needs_a_key(operation: dict[str, Any], *, sse: bool) -> None:
    operation["security"] = [{"bearer": []}, {"accessToken": []}] if sse else [{"bearer": []}]
    operation["responses"]["401"] = {
        "description": "No valid API key (`WWW-Authenticate: Bearer`)",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    }


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in document.get("paths", {}).values() for op in path.values()]


def _not_nullable(schema: dict[str, Any]) -> None:
    # FastAPI documents an optional parameter as "anyOf: [X, null]", but an HTTP parameter
    # is absent or has a value: it is never null (a fuzzer would send the text "null").
    branches = [branch for branch in schema.pop("anyOf", ()) if branch.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


def _describe_errors(responses: dict[str, Any]) -> None:
    if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's own
        del responses["422"]
    # Every route: the body limit is checked before routing, whatever the method.
    responses.setdefault("413", {"description": "Body over TASKWIRE_MAX_BODY"})
    responses.setdefault("500", {"description": "Unexpected error (logged with its request id)"})
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}}
