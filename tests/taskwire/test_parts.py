"""The client's parts that need no server: reading answers into errors, the parameter reader's
less common schemas, and how tasks and events are shown."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from taskwire import (
    InvalidRequest,
    ProblemError,
    Resync,
    ServerError,
    Task,
    TaskEvent,
    TaskType,
    Unavailable,
    display,
)
from taskwire.errors import problem_of, retry_after_s
from taskwire.params import ParameterError, describe, parse_parameters
from taskwire.retries import HEALTHY_S, Reconnects, RetryPolicy
from tests.test_layers import ROOT, imports


def answer(status: int, content: bytes = b"", **headers: str) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, content=content, request=httpx.Request("GET", "http://tw/")
    )


def test_an_answer_that_is_not_problem_json_still_makes_a_typed_error() -> None:
    error = problem_of(answer(503, b"Service Unavailable", **{"X-Request-ID": "r1"}))
    assert isinstance(error, Unavailable)
    assert (error.status, error.title, error.detail, error.request_id) == (
        503,
        "Service Unavailable",
        "Service Unavailable",
        "r1",
    )
    assert error.retry_after_s is None and error.body == {}
    assert error.to_json()["status"] == 503
    assert isinstance(problem_of(answer(500, b"{not json")), ServerError)
    assert type(problem_of(answer(418))) is ProblemError
    assert isinstance(problem_of(answer(413)), InvalidRequest)


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after_s(answer(429, **{"Retry-After": "12"})) == 12
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_s(answer(503, **{"Retry-After": later})) or 0) <= 30
    assert retry_after_s(answer(503, **{"Retry-After": "soon"})) is None
    assert retry_after_s(answer(503)) is None


def test_a_stream_that_stayed_open_a_while_worked_even_if_quiet() -> None:
    now = [0.0]
    reconnects = Reconnects(RetryPolicy(retries=1), clock=lambda: now[0])
    for _ in range(5):  # quiet feeds that a proxy cuts off now and then
        reconnects.opened()
        now[0] += HEALTHY_S
        assert reconnects.wait_s(3.0) == 3.0
    reconnects.opened()
    assert reconnects.wait_s(None) == RetryPolicy().backoff_s  # no retry: given: a backoff
    reconnects.opened()
    assert reconnects.wait_s(3.0) is None  # two in a row that did not work


def test_a_retry_policy_refuses_negative_budgets() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        RetryPolicy(retries=-1)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"]},
        "options": {"type": "object"},
        "mode": {"const": "fast"},
        "level": {"oneOf": [{"type": "integer", "minimum": 1}, {"enum": ["max"]}]},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        "anything": {},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$", "maxLength": 3},
        "mixed": {"type": "array", "items": {"type": ["integer", "string"]}},
    },
}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["name=null"], {"name": None}),
        (["name=Ada"], {"name": "Ada"}),
        (['options={"a": 1}'], {"options": {"a": 1}}),
        (["mode=fast"], {"mode": "fast"}),
        (["level=3"], {"level": 3}),
        (["level=max"], {"level": "max"}),
        (["tags=a,b"], {"tags": ["a", "b"]}),
        (["anything=[1, true]"], {"anything": [1, True]}),
        (["anything=plain words"], {"anything": "plain words"}),
        (["undeclared=1"], {"undeclared": 1}),  # the schema does not close its properties
        (["ratio=0.5"], {"ratio": 0.5}),
        (["code=ABC"], {"code": "ABC"}),
        (["mixed=1,x"], {"mixed": [1, "x"]}),
    ],
)
def test_less_common_schemas(words: list[str], expected: dict[str, Any]) -> None:
    assert parse_parameters(SCHEMA, words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["options=[1]"], "options: expected a JSON object"),
        (["options=nope"], "options: expected a JSON object"),
        (["mode=slow"], "mode: expected fast"),
        (["level=0"], "level: expected an integer or one of max"),
        (["level:=0"], "level: expected an integer or one of max"),
        (["tags=a,c"], "tags: expected a list of values among a, b"),
        (["tags=a,b,a"], "tags: takes at most 2 items"),
        (["tags=[1"], "not valid JSON"),
        (["tags={}"], "tags: expected a list of values among a, b"),
        (["ratio=0"], "ratio: must be more than 0"),
        (["ratio=1"], "ratio: must be less than 1"),
        (["code=abcd"], "code: must be at most 3 characters"),
        (["code=abc"], "'abc' is not valid: must match ^[A-Z]{3}$"),
        (["=1"], "expected key=value"),
    ],
)
def test_less_common_schemas_refuse(words: list[str], message: str) -> None:
    with pytest.raises(ParameterError) as refused:
        parse_parameters(SCHEMA, words)
    assert message in str(refused.value)


def test_descriptions() -> None:
    assert describe(SCHEMA, SCHEMA["properties"]["mixed"]) == "a list of values"
    assert describe(SCHEMA, SCHEMA["properties"]["anything"]) == "any JSON value"
    assert describe(SCHEMA, {"type": "array"}) == "a list"
    assert describe({"$defs": {"N": {"type": "number"}}}, {"$ref": "#/$defs/N"}) == "a number"
    assert describe(SCHEMA, {"$ref": "https://elsewhere/schema"}) == "any JSON value"


def task(**fields: Any) -> Task:
    now = datetime.now(UTC).isoformat()
    return Task.from_json(
        {
            "task_id": str(uuid.uuid4()),
            "task_type": "compute_sum",
            "status": "processing",
            "priority": "normal",
            "parameters": {"numbers": [1.0]},
            "progress": 40,
            "eta_s": 75.4,
            "result": None,
            "error": None,
            "attempt": 2,
            "created_at": now,
            "started_at": now,
            "finished_at": None,
            **fields,
        }
    )


def shown(*renderables: Any) -> str:
    console = Console(record=True, width=120)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def test_a_task_in_detail() -> None:
    failed = task(
        status="failed",
        eta_s=None,
        error={"type": "TimeoutError", "message": "too slow"},
        owner="ada",
    )
    text = shown(display.task_detail(task()), display.task_detail(failed))
    assert re.search(r"^eta +1m15s", text, re.MULTILINE)
    assert "TimeoutError: too slow" in text and "owner" in text and '"ada"' in text


def test_a_task_table_and_an_old_date() -> None:
    old = task(created_at="2020-01-02T03:04:05Z", status="failed")
    text = shown(display.task_table([task(), old]))
    assert "processing 40% #2" in text and "failed 40%" in text
    assert display.short_when(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)).startswith("2020-01-0")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0s"), (-3, "0s"), (0.25, "0.2s"), (0.94, "0.9s"), (0.96, "1s"), (75.2, "1m15s")],
)
def test_seconds_under_one_are_not_shown_as_none(value: float, shown: str) -> None:
    assert display.seconds(value) == shown  # "retrying in 0s" read as no wait at all


def test_outcomes_and_event_lines() -> None:
    cancelled = task(status="cancelled", eta_s=None)
    unfinished = task()
    failed = task(status="failed", error=None)
    text = shown(display.outcome(cancelled), display.outcome(unfinished), display.outcome(failed))
    assert "cancelled" in text and "processing: not finished yet (40%)" in text
    assert "failed (attempt 2): no error given" in text
    event = TaskEvent(7, "task.failed", task(error={"type": "E", "message": "m"}))
    line = shown(display.event_line(event), display.event_line(Resync(8)))
    assert "7  task.failed" in line and "E: m" in line and "eta 1m15s" in line
    assert "resync: events were missed" in line


def test_task_types_with_their_limits() -> None:
    email = TaskType.from_json(
        {
            "task_type": "batch_email",
            "description": "Send it.",
            "parameters_schema": {
                "properties": {
                    "recipients": {"type": "array", "items": {"description": "an address"}},
                    "subject": {"type": "string", "minLength": 1},
                },
                "required": ["recipients"],
            },
            "duration_s": {"min": 5.0, "max": 30.0},
            "cost": 3,
        }
    )
    assert email.extra == {"cost": 3} and email.to_json()["cost"] == 3
    text = shown(display.type_table([email]))
    assert "each an address" in text and "1–… characters" in text and "default null" in text


SERVER = {"service", "api", "streams", "middleware", "fastapi", "starlette", "uvicorn"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, id=path.name)
        for path in sorted((ROOT / "taskwire").glob("*.py"))
        if path.name != "cli.py"
    ],
)
def test_the_client_imports_nothing_of_the_service(path: Path) -> None:
    assert not imports(path) & SERVER


def test_the_command_imports_the_service_only_in_the_operators_commands() -> None:
    # serve, worker and keys new run on the service's host; the API commands need only HTTP.
    tree = ast.parse((ROOT / "taskwire" / "cli.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in {"serve", "worker", "new_key"}:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                assert inner.module.split(".")[0] not in SERVER
            elif isinstance(inner, ast.Import):
                assert not {alias.name.split(".")[0] for alias in inner.names} & SERVER
