"""The ``taskwire`` command against a real server: parameters read against each type's JSON
Schema, ``--json`` output, exit codes, the rate-limit message, and the live streams (run as
a real process, stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from api.app import create_app
from taskwire import Client, Resync, Task, display
from taskwire.cli import ExitCode, app
from taskwire.params import ParameterError, parse_parameters
from tests.conftest import make_settings
from tests.processes import BIN, free_port
from tests.support import FAILSAFE_S, Subscriptions, bus_of
from tests.taskwire.conftest import SUM, Gate, ThreadedServer
from tests.taskwire.test_client import stored

runner = CliRunner()


def run(url: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--url", url])


def words(text: str) -> str:
    """Text as a person reads it: without the boxes Typer draws, on one line."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def shared() -> Iterator[ThreadedServer]:
    """One server for the tests that only add tasks (its settings: instant work, no limit)."""
    with ThreadedServer(create_app(make_settings())) as server:
        yield server


@pytest.fixture(scope="module")
def schemas(shared: ThreadedServer) -> dict[str, Any]:
    with Client(shared.url) as client:
        return {t.task_type: t.parameters_schema for t in client.task_types()}


GOOD = [
    ("compute_sum", ["numbers=1,2,3.5"], {"numbers": [1, 2, 3.5]}),
    ("compute_sum", ["numbers=-1e3, 2"], {"numbers": [-1000.0, 2]}),
    ("compute_sum", ["numbers=[1, 2]"], {"numbers": [1, 2]}),
    ("compute_sum", ["numbers:=[0.5]"], {"numbers": [0.5]}),
    ("generate_report", ["title=Q3, in short"], {"title": "Q3, in short"}),
    ("generate_report", ["title=a=b", "sections=3.0"], {"title": "a=b", "sections": 3}),
    ("generate_report", ['title:="1984"', "sections=20"], {"title": "1984", "sections": 20}),
    (
        "batch_email",
        ["recipients=a@x.io,b@y.org", "subject=hello"],
        {"recipients": ["a@x.io", "b@y.org"], "subject": "hello"},
    ),
    (
        "batch_email",
        ["recipients=a@x.io", "recipients=bounce@y.org", "subject=hi, all"],
        {"recipients": ["a@x.io", "bounce@y.org"], "subject": "hi, all"},
    ),
    ("data_processing", ["rows=1000000"], {"rows": 1_000_000}),
    (
        "image_processing",
        ["count=50", "operation=thumbnail"],
        {"count": 50, "operation": "thumbnail"},
    ),
    ("find_longest_consecutive_letters", ["string=aabbbc"], {"string": "aabbbc"}),
    ("unstable_task", ["failure_rate=0"], {"failure_rate": 0}),
    ("unstable_task", [], {}),
]

BAD = [
    ("compute_sum", ["numbers=1,two"], "numbers: expected a list of numbers"),
    ("compute_sum", ["numbers=nan"], "numbers: expected a list of numbers"),
    ("compute_sum", ['numbers:="1"'], 'numbers: expected a list of numbers, got "1"'),
    ("compute_sum", ["numbers="], "numbers: needs at least 1 item"),
    ("compute_sum", ["numbers=2e304"], "numbers item 1: must be at most 1e+304"),
    ("compute_sum", ["numbers:=[1,"], "numbers: not valid JSON"),
    ("compute_sum", [], "missing parameter: numbers (a list of numbers)"),
    ("compute_sum", ["numbers=1", "extra=2"], "unknown parameter 'extra' for compute_sum"),
    ("compute_sum", ["numbers"], "expected key=value, got 'numbers'"),
    ("generate_report", ["title=x", "sections=2.5"], "sections: expected an integer"),
    ("generate_report", ["title=x", "sections=true"], "sections: expected an integer"),
    ("generate_report", ["title=x", "sections=21"], "sections: must be at most 20"),
    ("generate_report", ["title="], "title: must be at least 1 character"),
    ("generate_report", ["title=a", "title=b"], "title: given twice"),
    ("batch_email", ["recipients=nobody", "subject=x"], "'nobody' is not valid: local@domain"),
    ("data_processing", ["rows=0x10"], "rows: expected an integer, got '0x10'"),
    (
        "image_processing",
        ["count=1", "operation=rotate"],
        "operation: expected one of resize, convert, thumbnail, got 'rotate'",
    ),
    ("unstable_task", ["failure_rate=often"], "failure_rate: expected a number"),
]


@pytest.mark.parametrize(("task_type", "assignments", "parameters"), GOOD)
def test_parameters_are_read_against_the_schema(
    schemas: dict[str, Any],
    task_type: str,
    assignments: list[str],
    parameters: dict[str, Any],
) -> None:
    assert parse_parameters(schemas[task_type], assignments) == parameters


@pytest.mark.parametrize(("task_type", "assignments", "message"), BAD)
def test_a_bad_parameter_is_refused_in_the_schemas_words(
    schemas: dict[str, Any], task_type: str, assignments: list[str], message: str
) -> None:
    with pytest.raises(ParameterError) as refused:
        parse_parameters(schemas[task_type], assignments, task_type=task_type)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("words_", "parameters"),
    [(["flag=yes", "mode=b"], {"flag": True, "mode": "b"}), (["maybe=null"], {"maybe": None})],
)
def test_booleans_references_and_nullable_values(
    words_: list[str], parameters: dict[str, Any]
) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "flag": {"type": "boolean"},
            "mode": {"$ref": "#/$defs/Mode"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "$defs": {"Mode": {"enum": ["a", "b"], "type": "string"}},
    }
    assert parse_parameters(schema, words_) == parameters
    with pytest.raises(ParameterError, match="flag: expected true or false"):
        parse_parameters(schema, ["flag=perhaps"])
    with pytest.raises(ParameterError, match="mode: expected one of a, b"):
        parse_parameters(schema, ["mode=c"])
    with pytest.raises(ParameterError, match="maybe: expected an integer or null"):
        parse_parameters(schema, ["maybe=x"])


@pytest.mark.parametrize(("task_type", "assignments", "parameters"), GOOD[::3])
def test_submit_sends_what_it_read(
    shared: ThreadedServer,
    task_type: str,
    assignments: list[str],
    parameters: dict[str, Any],
) -> None:
    result = run(shared.url, "submit", task_type, *assignments, "--priority", "high", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    task = json.loads(result.stdout)
    assert (task["task_type"], task["priority"], task["status"]) == (task_type, "high", "queued")
    assert {k: task["parameters"][k] for k in parameters} == parameters


@pytest.mark.parametrize(("task_type", "assignments", "message"), BAD[::4])
def test_submit_refuses_a_bad_parameter_before_any_submission(
    shared: ThreadedServer, task_type: str, assignments: list[str], message: str
) -> None:
    before = shared.call(lambda: stored(shared.app))
    result = run(shared.url, "submit", task_type, *assignments)
    assert result.exit_code == ExitCode.USAGE
    assert message in words(result.stderr)
    assert shared.call(lambda: stored(shared.app)) == before


def test_usage_errors_are_2(shared: ThreadedServer) -> None:
    unknown = run(shared.url, "submit", "no_such_type", "x=1")
    assert unknown.exit_code == 2
    assert "unknown task type 'no_such_type'; one of: compute_sum" in words(unknown.stderr)
    assert run(shared.url, "submit", "compute_sum", "numbers=1", "--priority", "max").exit_code == 2
    assert run(shared.url, "ls", "--status", "done").exit_code == 2
    bad_key = run(shared.url, "submit", "compute_sum", "numbers=1", "--idempotency-key", "")
    assert bad_key.exit_code == 2 and "printable ASCII" in words(bad_key.stderr)
    no_scheme = run("localhost:8000", "types")  # a usage error, not a service unavailable
    assert no_scheme.exit_code == 2 and "not an http:// or https:// URL" in words(no_scheme.stderr)


def test_json_output_of_every_command(shared: ThreadedServer) -> None:
    url = shared.url
    submitted = run(url, "submit", "compute_sum", "numbers=1,2", "--wait", "--json")
    assert submitted.exit_code == 0, submitted.output
    task = json.loads(submitted.stdout)
    assert (task["status"], task["result"]) == ("completed", {"sum": 3})
    task_id = task["task_id"]

    assert json.loads(run(url, "get", task_id, "--json").stdout) == task
    assert json.loads(run(url, "wait", task_id, "--json").stdout) == task
    listed = json_lines(run(url, "ls", "--type", "compute_sum", "--limit", "2", "--json").stdout)
    assert len(listed) == 2 and listed[0] == task  # NDJSON: one task per line, newest first
    types = json.loads(run(url, "types", "--json").stdout)
    assert {t["task_type"] for t in types} >= {"compute_sum", "unstable_task"}

    failed = json.loads(run(url, "submit", "unstable_task", "failure_rate=1", "--json").stdout)
    with Client(url) as client:
        client.wait(failed["task_id"])
    retried = run(url, "retry", failed["task_id"], "--json")
    assert (json.loads(retried.stdout)["attempt"], retried.exit_code) == (2, 0)
    problem = run(url, "cancel", task_id, "--json")  # finished: 409, as problem JSON
    assert problem.exit_code == ExitCode.REFUSED
    body = json.loads(problem.stdout)
    assert (body["status"], body["title"], body["instance"]) == (
        409,
        "Conflict",
        f"/tasks/{task_id}",
    )


def test_people_get_tables_and_words(shared: ThreadedServer) -> None:
    url = shared.url
    submitted = run(url, "submit", "compute_sum", "numbers=1,2,3.5", "--wait")
    assert submitted.exit_code == 0
    assert "completed" in submitted.stdout and '"sum": 6.5' in submitted.stdout
    quiet = run(url, "submit", "compute_sum", "numbers=1")
    task_id = quiet.stdout.strip()  # just the id, for ID=$(taskwire submit …)
    assert uuid.UUID(task_id) and "submitted compute_sum" in quiet.stderr
    assert task_id in run(url, "ls").stdout
    shown = run(url, "get", task_id).stdout
    assert "task_id" in shown and task_id in shown and "compute_sum" in shown
    assert "numbers: a list of numbers" in words(run(url, "types").stdout)


def test_exit_codes_follow_the_task(threaded: Callable[..., ThreadedServer], gate: Gate) -> None:
    with threaded() as server, Client(server.url) as client:
        url = server.url
        held = client.submit("compute_sum", SUM)
        server.call(lambda: gate.reached_by(1))
        timed_out = run(url, "wait", held.task_id, "--timeout", "0.1")
        assert timed_out.exit_code == ExitCode.TIMED_OUT
        client.cancel(held.task_id)
        cancelled = run(url, "wait", held.task_id)
        assert cancelled.exit_code == ExitCode.TASK_CANCELLED
        assert "cancelled" in cancelled.stdout
        server.call(gate.open)


def test_a_failed_task_is_1_and_a_refusal_4(shared: ThreadedServer) -> None:
    failed = run(shared.url, "submit", "unstable_task", "failure_rate=1", "--wait")
    assert failed.exit_code == ExitCode.TASK_FAILED
    assert "TaskFailedError" in failed.stdout
    malformed = run(shared.url, "get", "not-a-uuid")
    assert malformed.exit_code == ExitCode.REFUSED
    assert "400 Bad Request: invalid task_id" in malformed.stderr
    assert "  task_id: a task id is a UUID" in malformed.stderr  # each invalid field
    missing = run(shared.url, "get", str(uuid.uuid4()))
    assert missing.exit_code == ExitCode.REFUSED
    assert "404 Not Found" in missing.stderr and "Traceback" not in missing.output


def test_a_rate_limited_user_is_told_how_long_to_wait(
    threaded: Callable[..., ThreadedServer],
) -> None:
    with threaded(rate_limit=1, rate_window_s=60) as server:
        assert run(server.url, "ls").exit_code == 0  # the window's one request
        limited = run(server.url, "ls")
        as_json = run(server.url, "ls", "--json")
    assert limited.exit_code == as_json.exit_code == ExitCode.RATE_LIMITED
    assert "rate limited: too many requests; try again in 1m00s" in limited.stderr
    assert "Traceback" not in limited.output
    problem = json.loads(as_json.stdout)
    assert (problem["status"], problem["retry_after_s"]) == (429, 60)


def test_an_unavailable_service_is_6(
    threaded: Callable[..., ThreadedServer], gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("taskwire.cli._pause", waits.append)
    nowhere = run(f"http://127.0.0.1:{free_port()}", "get", str(uuid.uuid4()))
    assert nowhere.exit_code == ExitCode.UNAVAILABLE
    assert "cannot reach the service at http://127.0.0.1:" in words(nowhere.stderr)
    assert waits == [0.5, 1.0, 2.0]  # retried, and said so
    assert words(nowhere.stderr).count("retrying in") == 3

    waits.clear()
    with threaded(max_tasks=1) as server, Client(server.url) as client:
        client.submit("compute_sum", SUM)
        server.call(lambda: gate.reached_by(1))  # the store is full of live tasks
        full = run(server.url, "submit", "compute_sum", "numbers=1")
        server.call(gate.open)
    assert full.exit_code == ExitCode.UNAVAILABLE
    assert "the service is unavailable: " in words(full.stderr)
    assert "try again in 1s" in full.stderr
    assert waits == [1.0, 1.0, 1.0]


def test_the_documented_exit_codes() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "TASK_FAILED": 1,
        "USAGE": 2,
        "TASK_CANCELLED": 3,
        "REFUSED": 4,
        "RATE_LIMITED": 5,
        "UNAVAILABLE": 6,
        "TIMED_OUT": 7,
        "INTERRUPTED": 130,
        "OUTPUT_CLOSED": 141,
    }


def test_serve_and_worker_are_still_there() -> None:
    listed = runner.invoke(app, ["--help"]).stdout
    for command in ("serve", "worker", "submit", "get", "wait", "ls", "cancel", "retry"):
        assert command in listed
    assert "--url" in words(runner.invoke(app, ["events", "--help"]).stdout)


# The endless commands, as real processes stopped with Ctrl-C


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "taskwire"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )


def interrupted(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)
    return process.returncode, stdout, stderr


def test_events_tails_the_feed_as_ndjson(shared: ThreadedServer) -> None:
    process = start(
        "events", "--since", "0", "--type", "compute_sum", "--json", "--url", shared.url
    )
    assert process.stdout is not None
    try:
        resync = json.loads(process.stdout.readline())  # "0" is older than any history
        assert resync["type"] == "resync"
        with Client(shared.url) as client:
            task = client.submit("compute_sum", SUM, wait=True)
        names: list[str] = []
        while not names or names[-1] != "task.completed":
            event = json.loads(process.stdout.readline())
            assert event["task"]["task_id"] == task.task_id and event["id"] > resync["id"]
            names.append(event["type"])
        assert names[0] == "task.queued"
    finally:
        code, _, stderr = interrupted(process)
    assert code == ExitCode.INTERRUPTED, stderr


def test_a_command_whose_output_is_closed_stops_quietly(shared: ThreadedServer) -> None:
    # `taskwire events --json | head -1`: exit as a shell shows SIGPIPE's, not 1 ("failed").
    with start("events", "--since", "0", "--json", "--url", shared.url) as process:
        assert process.stdout is not None and process.stderr is not None
        assert json.loads(process.stdout.readline())["type"] == "resync"
        process.stdout.close()  # the reader goes; the next event's line has nowhere to go
        with Client(shared.url) as client:
            client.submit("compute_sum", SUM, wait=True)
        assert process.wait(timeout=FAILSAFE_S) == ExitCode.OUTPUT_CLOSED == 141
        assert process.stderr.read() == ""


def test_ls_watch_streams_ndjson_and_keeps_a_live_table(shared: ThreadedServer) -> None:
    with Client(shared.url) as client:
        before = client.submit("compute_sum", SUM, wait=True)
    subscriptions = Subscriptions(bus_of(shared.app))
    watches = bus_of(shared.app).open_by_kind["watch"]
    feed = start("ls", "--watch", "--status", "completed", "--json", "--url", shared.url)
    table = start("ls", "--watch", "--status", "completed", "--limit", "3", "--url", shared.url)
    assert feed.stdout is not None
    try:
        line = json.loads(feed.stdout.readline())
        while line["type"] == "snapshot":
            line = json.loads(feed.stdout.readline())
        assert line == {"type": "synced"}
        with Client(shared.url) as client:
            after = client.submit("compute_sum", SUM, wait=True)
        event = json.loads(feed.stdout.readline())
        assert (event["type"], event["task"]["task_id"]) == ("task.completed", after.task_id)
        # The table's watch is open too (counted by kind: the submit's long-poll is not one).
        shared.call(lambda: subscriptions.of_kind("watch", watches + 2))
    finally:
        code, _, _ = interrupted(feed)
        table_code, shown, errors = interrupted(table)
    assert code == table_code == ExitCode.INTERRUPTED
    assert "Tasks (" in shown and "Traceback" not in errors  # drawn once more as it stops
    assert before.task_id != after.task_id


def test_the_live_table_applies_snapshots_events_and_resyncs(shared: ThreadedServer) -> None:
    with Client(shared.url) as client:
        task = client.submit("compute_sum", SUM, wait=True)
        watch = client.watch(status="completed")
        board = display.TaskBoard(limit=2)
        while not board.synced:
            board.apply(next(watch))
        newer = client.submit("generate_report", {"title": "t"}, wait=True)
        board.apply(next(watch))
        watch.close()
    console = Console(record=True, width=120)
    console.print(board)
    shown = console.export_text()
    assert newer.task_id in shown and task.task_id in shown  # the newest two
    assert shown.index(newer.task_id) < shown.index(task.task_id)
    assert "live" in shown
    board.apply(Resync())
    assert board.tasks == {} and not board.synced


def test_events_prints_a_line_per_event_and_says_when_to_reload(
    threaded: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("taskwire.cli._pause", lambda seconds: None)
    with threaded() as server:
        bus = bus_of(server.app)
        subscriptions = Subscriptions(bus)

        def meanwhile() -> Task:
            server.call(lambda: subscriptions.opened(1))  # the command is listening
            with Client(server.url) as client:
                task = client.submit("unstable_task", {"failure_rate": 1}, wait=True)

            async def shut() -> None:  # its stream ends (after what it has queued), for good
                bus.close()

            server.call(shut)
            return task

        with ThreadPoolExecutor(1) as pool:
            happening = pool.submit(meanwhile)
            result = run(server.url, "events", "--since", "0")
            task = happening.result(FAILSAFE_S)
    assert result.exit_code == ExitCode.UNAVAILABLE  # the stream kept ending: it gave up
    assert "resync: events were missed; reload the list (taskwire ls)" in result.stderr
    lines = [line for line in result.stdout.splitlines() if task.task_id in line]
    assert "task.queued" in lines[0] and "unstable_task" in lines[0]
    assert "task.failed" in lines[-1] and "TaskFailedError" in lines[-1]
    assert "the stream keeps ending" in words(result.stderr)


def test_retry_and_cancel_say_what_they_did(shared: ThreadedServer) -> None:
    with Client(shared.url) as client:
        failed = client.submit("unstable_task", {"failure_rate": 1}, wait=True)
    retried = run(shared.url, "retry", failed.task_id)
    assert retried.exit_code == 0
    assert retried.stdout.strip() == f"queued {failed.task_id} again (attempt 2)"
    with Client(shared.url) as client:
        client.wait(failed.task_id)
    refused = run(shared.url, "cancel", failed.task_id)
    assert refused.exit_code == ExitCode.REFUSED and "409 Conflict" in refused.stderr


def test_no_service_in_json_is_an_error_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("taskwire.cli._pause", lambda seconds: None)
    result = run(f"http://127.0.0.1:{free_port()}", "types", "--json")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert json.loads(result.stdout)["error"].startswith("cannot reach the service at ")
