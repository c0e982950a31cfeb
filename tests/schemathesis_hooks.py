"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS).

``GET /tasks?watch=true`` streams until the client leaves, so a fuzzer waiting for the end of
the body would wait forever; ``tests/streams`` covers it. Every other case is generated.

A valid ``Idempotency-Key`` is made unique per request: the fuzzer draws keys from a small
space, and a key it reused with another body is rightly a 422 (or a 409 while the first is
handled), a rule about earlier requests that no schema can state; ``tests/api`` covers it.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import schemathesis
from pydantic import TypeAdapter, ValidationError

from api.idempotency import parse_key

_BOOL = TypeAdapter(bool)


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    try:
        return not (case.query and _BOOL.validate_python(case.query.get("watch", False)))
    except ValidationError:
        return True  # not a boolean: a 400, which is worth generating


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and parse_key(key) is not None:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx: Any, response: Any) -> list[Any]:
    """Every line, so the documented schema of the whole stream can be checked."""
    return [orjson.loads(line) for line in response.content.splitlines()]
