"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS).

``GET /tasks?watch=true`` streams until the client leaves, so a fuzzer waiting for the end of
the body would wait forever; ``tests/streams`` covers it. Every other case is generated.
"""

from __future__ import annotations

from typing import Any

import orjson
import schemathesis
from pydantic import TypeAdapter, ValidationError

_BOOL = TypeAdapter(bool)


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    try:
        return not (case.query and _BOOL.validate_python(case.query.get("watch", False)))
    except ValidationError:
        return True  # not a boolean: a 400, which is worth generating


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx: Any, response: Any) -> list[Any]:
    """Every line, so the documented schema of the whole stream can be checked."""
    return [orjson.loads(line) for line in response.content.splitlines()]
