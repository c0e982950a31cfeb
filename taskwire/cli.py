"""The ``taskwire`` command: run the service, run a worker, and use the API.

Every API command takes ``--url`` (default ``TASKWIRE_URL``, else http://127.0.0.1:8000) and
``--json`` (machine-readable JSON on stdout: one object, or one object per line for lists and
streams; an error is its problem details object). Exit codes (``ExitCode``):

    0    ok; with --wait or ``wait``: the task completed
    1    the task failed
    2    usage error: a bad option, an unknown parameter, a value its schema refuses
    3    the task was cancelled
    4    the service refused the request (400, 404, 409, 413, 422: the message says why)
    5    rate limited (429): the message says how long to wait
    6    the service is unavailable: 503, another 5xx, or no connection
    7    ``wait --timeout`` passed before the task finished
    130  interrupted (Ctrl-C)
    141  the output was closed (``taskwire ls --json | head``), as a shell shows a command
         that SIGPIPE ended

``serve`` and ``worker`` import the service lazily; the API commands use only the client.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from taskwire import display
from taskwire.client import KEY_VARIABLE, Client, idempotency_header
from taskwire.errors import (
    ProblemError,
    RateLimited,
    ServerError,
    TaskwireError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from taskwire.models import Resync, Task, TaskStatus
from taskwire.params import ParameterError, parse_parameters

app = typer.Typer(
    name="taskwire",
    help="Taskwire: a rate-limited asynchronous task service, and a client for it.",
    no_args_is_help=True,
    add_completion=False,
)


class ExitCode(IntEnum):
    OK = 0
    TASK_FAILED = 1
    USAGE = 2
    TASK_CANCELLED = 3
    REFUSED = 4
    RATE_LIMITED = 5
    UNAVAILABLE = 6
    TIMED_OUT = 7
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141


class PriorityChoice(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


CLI_RETRIES = 3
CLI_MAX_WAIT_S = 10.0
"""The command waits out a Retry-After of up to this long (saying so), else says how long to
wait and exits."""

_pause = time.sleep
"""How the command waits before a retry (tests replace it)."""


def _http_url(url: str | None) -> str | None:
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL")
    return url


Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TASKWIRE_URL",
        show_envvar=True,
        callback=_http_url,
        help="The service's base URL (default: http://127.0.0.1:8000).",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="TASKWIRE_API_KEY",
        show_envvar=True,
        help="The API key, for a service that asks for one (better: the variable).",
    ),
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout (NDJSON for streams).")
]
TaskIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The task's id.")]


class Output:
    """Where a command's results and errors go: Rich for people, JSON for scripts."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def task(self, task: Task) -> None:
        if self.as_json:
            self.json(task.to_json())
        else:
            self.console.print(display.task_detail(task))

    def note(self, message: str) -> None:
        """A remark for the person at the terminal (stderr), never in the way of a script."""
        self.errors.print(message, style="dim")

    def problem(self, error: TaskwireError, message: str) -> None:
        if self.as_json:
            self.json(error.to_json() if isinstance(error, ProblemError) else {"error": message})
        self.errors.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)
        if isinstance(error, ProblemError):
            for field in error.errors:
                where = field.field or field.location
                self.errors.print(f"  {where}: {field.detail}", markup=False, soft_wrap=True)
            if error.request_id:
                self.errors.print(f"  (request id {error.request_id})", style="dim")


def _wait_words(seconds: float | None) -> str:
    if seconds is None:
        return "try again later"
    return f"try again in {display.seconds(seconds)}"


@contextmanager
def _session(url: str | None, key: str | None, out: Output) -> Iterator[Client]:
    """A client for one command; the service's errors become a message and an exit code."""

    def sleep(seconds: float) -> None:
        out.note(f"retrying in {display.seconds(seconds)}…")
        _pause(seconds)

    client = Client(url, retries=CLI_RETRIES, max_wait_s=CLI_MAX_WAIT_S, sleep=sleep, api_key=key)
    try:
        with client:
            yield client
    except RateLimited as error:
        out.problem(error, f"rate limited: too many requests; {_wait_words(error.retry_after_s)}")
        raise typer.Exit(ExitCode.RATE_LIMITED) from None
    except Unauthorized as error:
        if key or os.environ.get(KEY_VARIABLE):
            message = "the service refused the API key: it is not one of its keys"
        else:
            message = "the service asks for an API key: give one with --key or TASKWIRE_API_KEY"
        out.problem(error, message)
        raise typer.Exit(ExitCode.REFUSED) from None
    except Unavailable as error:
        detail = f": {error.detail}" if error.detail else ""
        message = f"the service is unavailable{detail}; {_wait_words(error.retry_after_s)}"
        out.problem(error, message)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    except ServerError as error:
        out.problem(error, error.message)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    except ProblemError as error:
        out.problem(error, error.message)
        raise typer.Exit(ExitCode.REFUSED) from None
    except TransportError as error:
        out.problem(error, f"cannot reach the service at {client.base_url}: {error}")
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:  # whoever read stdout has stopped: stop too, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        raise typer.Exit(ExitCode.OUTPUT_CLOSED) from None


def _finished(task: Task, out: Output, *, detail: bool = True) -> None:
    """Report a task that has (or has not) finished, and exit as its status says."""
    if out.as_json:
        out.json(task.to_json())
    elif detail:
        out.console.print(display.outcome(task))
    match task.status:
        case TaskStatus.FAILED:
            raise typer.Exit(ExitCode.TASK_FAILED)
        case TaskStatus.CANCELLED:
            raise typer.Exit(ExitCode.TASK_CANCELLED)
        case TaskStatus.COMPLETED:
            return
    raise typer.Exit(ExitCode.TIMED_OUT)


def _statuses(value: str | None) -> str | None:
    """A comma-separated status filter, checked before any request."""
    if value is None:
        return None
    known = {str(s) for s in TaskStatus}
    wrong = [s for s in value.split(",") if s not in known]
    if wrong:
        raise typer.BadParameter(
            f"{', '.join(map(repr, wrong))}: a status is one of {', '.join(known)}",
            param_hint="--status",
        )
    return value


@app.command()
def submit(
    task_type: Annotated[str, typer.Argument(help="The task type (see `taskwire types`).")],
    parameters: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Parameters, read against the type's JSON Schema: numbers=1,2,3.5 (a list), "
            "rows=100, operation=resize; KEY:=JSON gives a value as JSON.",
        ),
    ] = None,
    priority: Annotated[
        PriorityChoice, typer.Option(help="Queue priority.")
    ] = PriorityChoice.normal,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow its progress until it ends, then show it.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Send this Idempotency-Key (default: a new UUID per command)."),
    ] = None,
    url: Url = None,
    key: ApiKey = None,
    as_json: JsonOutput = False,
) -> None:
    """Submit a task. Prints its id; with --wait, a progress bar, then its result."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        types = {t.task_type: t for t in client.task_types()}
        if task_type not in types:
            raise typer.BadParameter(
                f"unknown task type {task_type!r}; one of: {', '.join(types)}",
                param_hint="TASK_TYPE",
            )
        if idempotency_key is not None:
            try:
                idempotency_header(idempotency_key)
            except ValueError as error:
                raise typer.BadParameter(str(error), param_hint="--idempotency-key") from None
        try:
            values = parse_parameters(
                types[task_type].parameters_schema, parameters or [], task_type=task_type
            )
        except ParameterError as error:
            raise typer.BadParameter(str(error), param_hint="KEY=VALUE") from None
        task = client.submit(
            task_type, values, priority=priority.value, idempotency_key=idempotency_key
        )
        if not wait:
            if as_json:
                out.json(task.to_json())
            else:
                out.console.print(task.task_id, markup=False)
                out.note(f"submitted {task.task_type} ({task.priority} priority): {task.status}")
            return
        events = client.task_events(task.task_id)
        if as_json:
            final = task
            for event in events:
                final = event.task
        else:
            final = display.follow(task, events, out.console)
        if not final.is_finished:  # the stream ended early (the task expired): ask
            final = client.get(task.task_id)
        _finished(final, out)


@app.command()
def get(
    task_id: TaskIdArgument, url: Url = None, key: ApiKey = None, as_json: JsonOutput = False
) -> None:
    """Show a task."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        out.task(client.get(task_id))


@app.command("wait")
def wait_command(
    task_id: TaskIdArgument,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Give up after this many seconds (exit 7).")
    ] = None,
    url: Url = None,
    key: ApiKey = None,
    as_json: JsonOutput = False,
) -> None:
    """Wait for a task to finish (long-polling); exit 0, 1 or 3 as it completed, failed or
    was cancelled."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        task = client.wait(task_id, timeout_s=timeout)
        _finished(task, out)


@app.command("ls")
def list_tasks(
    status: Annotated[
        str | None, typer.Option(help="Only these statuses, comma-separated (queued,processing).")
    ] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many, newest first.")] = (
        None
    ),
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep the table live, as tasks change (Ctrl-C ends).")
    ] = False,
    url: Url = None,
    key: ApiKey = None,
    as_json: JsonOutput = False,
) -> None:
    """List tasks, newest first (--json: one task per line, as they arrive)."""
    out = Output(as_json)
    statuses = _statuses(status)
    with _session(url, key, out) as client:
        if watch:
            items = client.watch(status=statuses, task_type=task_type)
            if as_json:
                for item in items:
                    out.json(item.to_json())
                return
            board = display.TaskBoard(limit=limit)
            with Live(board, console=out.console, refresh_per_second=4):
                for item in items:
                    board.apply(item)
            return
        tasks = client.list(status=statuses, task_type=task_type, limit=limit)
        if as_json:
            for task in tasks:
                out.json(task.to_json())
        else:
            rows = [*tasks]  # a table is drawn whole (--json streams instead)
            if rows:
                out.console.print(display.task_table(rows))
            else:
                out.note("no matching tasks")


@app.command()
def cancel(
    task_id: TaskIdArgument, url: Url = None, key: ApiKey = None, as_json: JsonOutput = False
) -> None:
    """Cancel a queued or processing task."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        task = client.cancel(task_id)
        if as_json:
            out.json(task.to_json())
        else:
            out.console.print(f"cancelled {task.task_id}", markup=False)


@app.command()
def retry(
    task_id: TaskIdArgument, url: Url = None, key: ApiKey = None, as_json: JsonOutput = False
) -> None:
    """Queue a failed or cancelled task again, as its next attempt."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        task = client.retry(task_id)
        if as_json:
            out.json(task.to_json())
        else:
            out.console.print(f"queued {task.task_id} again (attempt {task.attempt})", markup=False)


@app.command()
def types(url: Url = None, key: ApiKey = None, as_json: JsonOutput = False) -> None:
    """The task types and their parameters."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        task_types = client.task_types()
        if as_json:
            out.json([t.to_json() for t in task_types])
        else:
            out.console.print(display.type_table(task_types))


@app.command()
def events(
    since: Annotated[
        str | None, typer.Option(help="Resume after this event id (Last-Event-ID).")
    ] = None,
    task: Annotated[str | None, typer.Option(metavar="ID", help="Only this task.")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this task type.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only events into these statuses, comma-separated.")
    ] = None,
    url: Url = None,
    key: ApiKey = None,
    as_json: JsonOutput = False,
) -> None:
    """Tail the event feed (reconnecting by itself) until Ctrl-C."""
    out = Output(as_json)
    statuses = _statuses(status)
    with _session(url, key, out) as client:
        feed = client.events(
            task_id=task, task_type=task_type, status=statuses, last_event_id=since
        )
        for item in feed:
            if as_json:
                out.json(item.to_json())
            elif isinstance(item, Resync):
                out.errors.print(display.event_line(item), soft_wrap=True)
            else:
                out.console.print(display.event_line(item), soft_wrap=True)


@app.command()
def whoami(url: Url = None, key: ApiKey = None, as_json: JsonOutput = False) -> None:
    """Whom the service takes you for: your API key's name, and whether it is an admin's."""
    out = Output(as_json)
    with _session(url, key, out) as client:
        identity = client.whoami()
        if as_json:
            out.json({"keys": identity.keys, "name": identity.name, "admin": identity.admin})
        elif not identity.keys:
            out.console.print("the service asks for no API key: every request reaches every task")
        else:
            reach = "every task (admin)" if identity.admin else "its own tasks"
            out.console.print(f"{identity.name}: reaches {reach}", markup=False)


keys_app = typer.Typer(help="API keys, for the keys file (TASKWIRE_API_KEYS_FILE).")
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def new_key(
    name: Annotated[str, typer.Argument(help="Who the key is for: letters, digits, _ . -")],
    admin: Annotated[
        bool, typer.Option("--admin", help="The key reaches every task, not only its own.")
    ] = False,
) -> None:
    """Make a key: prints it once, and the line to add to the keys file (which holds only
    the key's SHA-256, never the key)."""
    from service.access import new_key as make

    try:
        key, line = make(name, admin=admin)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="NAME") from None
    typer.echo(f"key (shown once, keep it secret): {key}")
    typer.echo(f"add this line to the keys file:   {line}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    reload: bool = typer.Option(False, help="Restart when the code changes (development)."),
) -> None:
    """Run the service (uvicorn, one process); settings come from TASKWIRE_* variables."""
    import os

    import uvicorn

    from api.server import uvicorn_options
    from service.settings import load_settings

    settings = load_settings()  # a bad setting stops here, with its name, before uvicorn starts
    uvicorn.run(
        "asgi:app",
        host=host,
        port=port,
        reload=reload,
        access_log=False,
        # No proxy trusted unless named (uvicorn's default would trust 127.0.0.1).
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", ""),
        **uvicorn_options(settings.max_connections),
    )


@app.command()
def worker() -> None:
    """Run tasks without an HTTP server (needs TASKWIRE_BACKEND=redis://…)."""
    from service.worker import main

    main()


def main() -> None:
    app()
