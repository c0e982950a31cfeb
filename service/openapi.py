"""The OpenAPI document: FastAPI's, with every error answer described as problem JSON.

FastAPI documents extra responses under the route's media type and adds a 422 to every
route with parameters. Taskwire answers errors as ``application/problem+json`` and never
with 422, so the generated document is corrected here, once, instead of on every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from middleware.errors import PROBLEM_JSON
from service.schemas import Problem, WatchLine

REF = "#/components/schemas/{model}"


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
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
        for operation in _operations(document):
            _describe_errors(operation["responses"])
            for parameter in operation.get("parameters", ()):
                _not_nullable(parameter["schema"])
        app.openapi_schema = document
    return app.openapi_schema


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
    responses.pop("422", None)
    # Every route: the body limit is checked before routing, whatever the method.
    responses.setdefault("413", {"description": "Body over TASKWIRE_MAX_BODY"})
    responses.setdefault("500", {"description": "Unexpected error (logged with its request id)"})
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}}
