"""How the ``taskwire`` command shows things to a person, with Rich: tasks, tables, task
types, events, a live progress bar and a live task board. (``--json`` bypasses all of it.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich import box
from rich import progress as rich_progress
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from taskwire.models import Resync, Snapshot, Synced, Task, TaskEvent, TaskType, WatchItem
from taskwire.params import describe

STATUS_STYLES = {
    "queued": "cyan",
    "processing": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def status_text(status: str) -> Text:
    return Text(str(status), style=STATUS_STYLES.get(str(status), ""))


def when(moment: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float) -> str:
    """``75.2`` → ``1m15s``; under a second, to a tenth (``0.25`` → ``0.2s``), so that a short
    wait or run does not read as none."""
    if 0 < value < 0.95:
        return f"{value:.1f}s"
    whole = max(0, round(value))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def to_json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def task_detail(task: Task) -> Table:
    """One task, field by field."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("task_id", task.task_id)
    grid.add_row("task_type", task.task_type)
    grid.add_row("status", status_text(task.status))
    grid.add_row("priority", str(task.priority))
    grid.add_row("progress", f"{task.progress}%")
    if task.eta_s is not None:
        grid.add_row("eta", seconds(task.eta_s))
    grid.add_row("attempt", str(task.attempt))
    grid.add_row("created_at", when(task.created_at))
    if task.started_at:
        grid.add_row("started_at", when(task.started_at))
    if task.finished_at:
        grid.add_row("finished_at", when(task.finished_at))
    grid.add_row("parameters", escape(to_json_text(dict(task.parameters))))
    if task.result is not None:
        grid.add_row("result", escape(to_json_text(task.result)))
    if task.error is not None:
        grid.add_row("error", Text(f"{task.error.type}: {task.error.message}", style="red"))
    for name, value in task.extra.items():
        grid.add_row(name, escape(to_json_text(value)))
    return grid


def task_table(tasks: Iterable[Task], *, title: str | None = None) -> Table:
    """Tasks, one per row, narrow enough for 80 columns (``taskwire get`` shows the rest)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("task_id", no_wrap=True)
    table.add_column("type", min_width=11, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for task in tasks:
        status = status_text(task.status)
        if task.status == "processing" or (task.status == "failed" and task.progress):
            status.append(f" {task.progress}%")
        if task.attempt > 1:
            status.append(f" #{task.attempt}", style="dim")
        table.add_row(task.task_id, task.task_type, status, short_when(task.created_at))
    return table


def short_when(moment: datetime) -> str:
    """The time of day if it is today, else the date and time to the minute."""
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def type_table(types: Iterable[TaskType]) -> Table:
    table = Table(title="Task types", expand=False, show_lines=True)
    table.add_column("task_type", no_wrap=True, style="bold")
    table.add_column("parameters (key=value)", overflow="fold", ratio=1)
    table.add_column("duration", no_wrap=True)
    for task_type in types:
        schema = task_type.parameters_schema
        required = set(schema.get("required", ()))
        lines = [f"[dim]{escape(task_type.description)}[/dim]"]
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name, prop in properties.items():
            notes = [_limits(schema, prop)]
            if name not in required:
                notes.append(f"default {json.dumps(prop.get('default'))}")
            line = f"[bold]{escape(name)}[/bold]: {escape(describe(schema, prop))}"
            if note := "; ".join(filter(None, notes)):
                line += f" [dim]({escape(note)})[/dim]"
            lines.append(line)
        table.add_row(
            task_type.task_type,
            "\n".join(lines),
            f"{task_type.min_duration_s:g}–{task_type.max_duration_s:g} s",
        )
    return table


def _limits(root: Mapping[str, Any], prop: Mapping[str, Any]) -> str:
    """A property's bounds in words: "1–10000 items; each -1e+304–1e+304"."""
    parts = []
    for low, high, unit in (
        ("minItems", "maxItems", " items"),
        ("minLength", "maxLength", " characters"),
        ("minimum", "maximum", ""),
    ):
        if low in prop or high in prop:
            parts.append(f"{_bound(prop.get(low))}–{_bound(prop.get(high))}{unit}")
    items = prop.get("items")
    if isinstance(items, Mapping) and (inner := _limits(root, items)):
        parts.append(f"each {inner}")
    elif isinstance(items, Mapping) and items.get("description"):
        parts.append(f"each {items['description']}")
    return "; ".join(parts)


def _bound(value: Any) -> str:
    if value is None:
        return "…"
    return f"{value:g}" if isinstance(value, float) else str(value)


def event_line(item: TaskEvent | Resync) -> Text:
    """One line per event, for ``taskwire events``."""
    if isinstance(item, Resync):
        return Text(
            "resync: events were missed; reload the list (taskwire ls), then carry on",
            style="bold yellow",
        )
    task = item.task
    line = Text(f"{item.id}  ")
    line.append(f"{item.name:<16}", style=STATUS_STYLES.get(str(task.status), ""))
    line.append(f"  {task.task_id}  {task.task_type}  {task.progress:>3}%")
    if task.eta_s is not None and not task.is_finished:
        line.append(f"  eta {seconds(task.eta_s)}", style="dim")
    if task.error is not None:
        line.append(f"  {task.error.type}: {task.error.message}", style="red")
    return line


class EtaColumn(ProgressColumn):
    """The task's status and the service's own estimate of the time left (``eta_s``)."""

    def render(self, task: rich_progress.Task) -> Text:
        status = str(task.fields.get("status", ""))
        text = status_text(status)
        eta = task.fields.get("eta")
        if status == "processing" and isinstance(eta, int | float):
            # counted down between events, which come at most every 1% of the work
            left = eta - (time.monotonic() - task.fields.get("eta_at", time.monotonic()))
            text.append(f"  ETA {seconds(max(left, 0.0))}", style="cyan")
        return text


def follow(first: Task, events: Iterable[TaskEvent], console: Console) -> Task:
    """Show a live progress bar fed by ``events`` (the task's SSE stream) until it ends;
    returns the task as its last event showed it."""
    last = first
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        EtaColumn(),
        console=console,
        transient=False,
    )
    with bar:
        row = bar.add_task(
            f"{first.task_type} {first.task_id[:8]}",
            total=100,
            completed=first.progress,
            status=str(first.status),
            eta=first.eta_s,
            eta_at=time.monotonic(),
        )
        for event in events:
            last = event.task
            bar.update(
                row,
                completed=last.progress,
                status=str(last.status),
                eta=last.eta_s,
                eta_at=time.monotonic(),
            )
    return last


def outcome(task: Task) -> RenderableType:
    """What a finished task came to: its result, or its error."""
    if task.status == "completed":
        took = ""
        if task.started_at and task.finished_at:
            took = f" in {seconds((task.finished_at - task.started_at).total_seconds())}"
        return Group(
            Text(f"completed{took}", style="bold green"),
            Text(to_json_text(task.result)),
        )
    if task.status == "failed":
        error = task.error
        message = f"{error.type}: {error.message}" if error else "no error given"
        return Text(f"failed (attempt {task.attempt}): {message}", style="bold red")
    if task.status == "cancelled":
        return Text("cancelled", style="bold magenta")
    return Text(f"{task.status}: not finished yet ({task.progress}%)", style="yellow")


class TaskBoard:
    """The tasks a watch has seen, newest first: rendered afresh at each refresh of a
    ``rich.live.Live``, so that items are applied as fast as they arrive."""

    def __init__(self, *, limit: int | None = None, title: str = "Tasks") -> None:
        self.tasks: dict[str, Task] = {}
        self.synced = False
        self.limit = limit
        self.title = title

    def apply(self, item: WatchItem) -> None:
        match item:
            case Snapshot(task=task) | TaskEvent(task=task):
                if isinstance(item, TaskEvent) and item.name == "task.expired":
                    self.tasks.pop(task.task_id, None)
                else:
                    self.tasks[task.task_id] = task
            case Synced():
                self.synced = True
            case Resync():
                self.tasks.clear()
                self.synced = False

    def __rich__(self) -> Table:
        newest = sorted(self.tasks.values(), key=lambda t: t.created_at, reverse=True)
        shown = newest[: self.limit] if self.limit else newest
        state = "live" if self.synced else "loading…"
        return task_table(shown, title=f"{self.title} ({len(self.tasks)}, {state})")
