"""Task parameters from the command line: ``key=value`` words read against the task type's
JSON Schema (from ``GET /task-types``), so a bad value is refused before any request.

- ``numbers=1,2,3.5``: a list is comma-separated (or JSON, ``numbers=[1,2]``); a list may
  also be given a piece at a time (``recipients=a@x.io recipients=b@x.io``);
- ``rows=1000``: an integer (``3.0`` is one too, as in JSON Schema); ``failure_rate=0.2``: a
  number; ``flag=true``: a boolean (``true``/``false``, ``yes``/``no``, ``1``/``0``);
  ``operation=resize``: a string, or one of an enum;
- ``key:=JSON``: the value as JSON, as it is (``numbers:=[1, 2]``, ``title:='"1984"'``).

The schema's constraints (``minimum``, ``maxLength``, ``minItems``, ``enum``, ``pattern``,
…) are checked too; the service checks everything again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

Schema = Mapping[str, Any]

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NOUNS = {
    "number": ("a number", "numbers"),
    "integer": ("an integer", "integers"),
    "string": ("a string", "strings"),
    "boolean": ("true or false", "booleans"),
    "array": ("a list", "lists"),
    "object": ("a JSON object", "JSON objects"),
    "null": ("null", "nulls"),
}


class ParameterError(ValueError):
    """A parameter that the schema refuses, in words a user can act on."""


class _Unreadable(Exception):
    """The text cannot be read as the schema's type."""


def parse_parameters(
    schema: Schema, assignments: Sequence[str], *, task_type: str = "this type"
) -> dict[str, Any]:
    """The ``parameters`` object that ``assignments`` (``key=value`` or ``key:=JSON``)
    stand for, checked against ``schema``; raises ``ParameterError``."""
    properties: Mapping[str, Schema] = schema.get("properties", {})
    closed = schema.get("additionalProperties") is False
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, text, is_json = _split(assignment)
        if name not in properties and closed:
            known = ", ".join(properties) or "none"
            raise ParameterError(
                f"unknown parameter {name!r} for {task_type} (its parameters: {known})"
            )
        prop = _resolve(schema, properties.get(name, {}))
        value = _json(name, text) if is_json else _read(schema, name, prop, text)
        if name in values:
            if not _types(schema, prop) & {"array"} or is_json:
                raise ParameterError(f"{name}: given twice")
            value = [*values[name], *value]
        values[name] = value
    for name, value in values.items():
        _validate(schema, name, _resolve(schema, properties.get(name, {})), value)
    missing = [name for name in schema.get("required", ()) if name not in values]
    if missing:
        wanted = "; ".join(
            f"{name} ({describe(schema, _resolve(schema, properties.get(name, {})))})"
            for name in missing
        )
        raise ParameterError(f"missing parameter{'s' if len(missing) > 1 else ''}: {wanted}")
    return values


def describe(root: Schema, schema: Schema) -> str:
    """What a value must be, in words: "a list of numbers", "one of resize, convert"."""
    schema = _resolve(root, schema)
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    if "const" in schema:
        return _show(schema["const"])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return " or ".join(describe(root, branch) for branch in branches)
    kinds = sorted(_types(root, schema))
    if not kinds:
        return "any JSON value"
    words = []
    for kind in kinds:
        if kind == "array" and "items" in schema:
            words.append(f"a list of {_plural(root, schema['items'])}")
        else:
            words.append(_NOUNS.get(kind, (kind, kind))[0])
    return " or ".join(words)


def _plural(root: Schema, schema: Schema) -> str:
    schema = _resolve(root, schema)
    if "enum" in schema:
        return "values among " + ", ".join(_show(v) for v in schema["enum"])
    kinds = sorted(_types(root, schema))
    if len(kinds) != 1:
        return "values"
    return _NOUNS.get(kinds[0], (kinds[0], kinds[0] + "s"))[1]


def _split(assignment: str) -> tuple[str, str, bool]:
    name, sep, text = assignment.partition("=")
    if not sep or not name:
        raise ParameterError(f"expected key=value, got {assignment!r}")
    if name.endswith(":"):
        return name[:-1], text, True
    return name, text, False


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise ParameterError(f"{name}: not valid JSON ({error})") from None


def _read(root: Schema, name: str, schema: Schema, text: str) -> Any:
    """``text`` as the value the schema wants; raises ParameterError naming ``name``."""
    try:
        return _coerce(root, schema, text)
    except _Unreadable as unreadable:
        reason = f" ({unreadable})" if str(unreadable) else ""
        raise ParameterError(
            f"{name}: expected {describe(root, schema)}, got {text!r}{reason}"
        ) from None


def _coerce(root: Schema, schema: Schema, text: str) -> Any:
    schema = _resolve(root, schema)
    options = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else ()
    if options:
        for option in options:
            if text == _show(option):
                return option
        raise _Unreadable()
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        for branch in branches:
            try:
                value = _coerce(root, branch, text)
                _validate(root, "", _resolve(root, branch), value)
            except (_Unreadable, ParameterError):
                continue
            return value
        raise _Unreadable()
    kinds = _types(root, schema)
    if not kinds:  # any value: JSON if it reads as JSON, else the text
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "null" in kinds and text == "null":
        return None
    for kind in ("array", "boolean", "integer", "number", "string", "object"):
        if kind in kinds:
            try:
                return _READERS[kind](root, schema, text)
            except _Unreadable:
                if len(kinds) == 1:
                    raise
    raise _Unreadable()


def _array(root: Schema, schema: Schema, text: str) -> list[Any]:
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise _Unreadable(f"not valid JSON: {error}") from None
        if not isinstance(value, list):
            raise _Unreadable()
        return value
    if not text.strip():
        return []
    items = schema.get("items", {})
    values = []
    for n, piece in enumerate(text.split(","), start=1):
        try:
            values.append(_coerce(root, items, piece.strip()))
        except _Unreadable:
            raise _Unreadable(
                f"item {n}, {piece.strip()!r}, is not {describe(root, items)}"
            ) from None
    return values


def _boolean(root: Schema, schema: Schema, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Unreadable()


def _integer(root: Schema, schema: Schema, text: str) -> int:
    number = _number(root, schema, text)
    if isinstance(number, float) and not number.is_integer():
        raise _Unreadable()
    return int(number)


def _number(root: Schema, schema: Schema, text: str) -> int | float:
    text = text.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        raise _Unreadable() from None
    if not math.isfinite(number):
        raise _Unreadable()
    return number


def _string(root: Schema, schema: Schema, text: str) -> str:
    return text


def _object(root: Schema, schema: Schema, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise _Unreadable() from None
    if not isinstance(value, dict):
        raise _Unreadable()
    return value


_READERS = {
    "array": _array,
    "boolean": _boolean,
    "integer": _integer,
    "number": _number,
    "string": _string,
    "object": _object,
}


def _validate(root: Schema, name: str, schema: Schema, value: Any) -> None:
    """Check ``value`` against the schema's type and constraints."""
    schema = _resolve(root, schema)
    label = f"{name}: " if name else ""
    if "enum" in schema and value not in schema["enum"]:
        raise ParameterError(f"{label}expected {describe(root, schema)}, got {_got(value)}")
    if "const" in schema and value != schema["const"]:
        raise ParameterError(f"{label}expected {describe(root, schema)}, got {_got(value)}")
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        for branch in branches:
            try:
                _validate(root, name, branch, value)
            except ParameterError:
                continue
            return
        raise ParameterError(f"{label}expected {describe(root, schema)}, got {_got(value)}")
    kinds = _types(root, schema)
    if kinds and not any(_is(kind, value) for kind in kinds):
        raise ParameterError(f"{label}expected {describe(root, schema)}, got {_got(value)}")
    _bounds(label, schema, value)
    if isinstance(value, list):
        items = schema.get("items")
        if items is not None:
            for n, item in enumerate(value, start=1):
                _validate(root, f"{name} item {n}", items, item)


def _bounds(label: str, schema: Schema, value: Any) -> None:
    if _is("number", value):
        if "minimum" in schema and value < schema["minimum"]:
            raise ParameterError(f"{label}must be at least {_show(schema['minimum'])}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ParameterError(f"{label}must be at most {_show(schema['maximum'])}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise ParameterError(f"{label}must be more than {_show(schema['exclusiveMinimum'])}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise ParameterError(f"{label}must be less than {_show(schema['exclusiveMaximum'])}")
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ParameterError(f"{label}must be at least {_chars(schema['minLength'])}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ParameterError(f"{label}must be at most {_chars(schema['maxLength'])}")
        pattern = schema.get("pattern")
        if pattern is not None and re.search(pattern, value) is None:
            rule = schema.get("description") or f"must match {pattern}"
            raise ParameterError(f"{label}{value!r} is not valid: {rule}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise ParameterError(f"{label}needs at least {_items(schema['minItems'])}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ParameterError(f"{label}takes at most {_items(schema['maxItems'])}")


def _is(kind: str, value: Any) -> bool:
    match kind:
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
        case "null":
            return value is None
    return True


def _types(root: Schema, schema: Schema) -> set[str]:
    kind = _resolve(root, schema).get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


def _resolve(root: Schema, schema: Schema) -> Schema:
    """``schema``, or what its local ``$ref`` (``#/$defs/Name``) points to."""
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema = target
        seen += 1
    return schema


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return json.dumps(value)


def _got(value: Any) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _chars(n: int) -> str:
    return f"{n} character" if n == 1 else f"{n} characters"
