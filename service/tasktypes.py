"""Task types: the parameters each accepts, how long its work takes, and the work itself.

Work is simulated: a job sleeps for its planned duration in steps, reporting progress, and
computes a small real result. Adding a type means one ``Params`` subclass, one ``case`` in
``perform`` and one entry in ``TASK_TYPES``; the request schema, ``/task-types`` and the UI's
form follow from those.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from service.model import Priority

TICK_S = 0.25
"""Longest sleep between two progress reports, so a progress bar moves smoothly."""

MAX_ADDEND = 1e304
Addend = Annotated[float, Field(ge=-MAX_ADDEND, le=MAX_ADDEND, allow_inf_nan=False)]
"""A number to add up: 10 000 of them cannot sum beyond a 64-bit float (about 1.8e308), a rule
the JSON Schema states exactly, where a check of the sum itself could not be stated at all."""


def _integral_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]
"""An integer as JSON Schema means it: 3 and 3.0 both, but never "3" or true."""

_ATOM = r"[^@ \x00-\x1f\x7f-\x9f]+"  # explicit ranges: \s differs between regex engines
EmailAddress = Annotated[
    str,
    Field(
        max_length=254,
        pattern=rf"^{_ATOM}@{_ATOM}\.{_ATOM}$",
        description="local@domain.tld, without spaces or control characters",
    ),
]
"""A syntactic check only: the schema states exactly what is enforced, and nothing is sent."""


class TaskFailedError(Exception):
    """A job's own, expected failure (as opposed to a bug or a timeout)."""


class Params(BaseModel):
    """Base of every parameter model: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    task_type: ClassVar[str]
    duration_s: ClassVar[tuple[float, float]]
    """Base duration range in seconds, before ``TASKWIRE_WORK_SCALE``."""

    def size(self) -> float:
        """Where this job lies between the type's shortest (0.0) and longest (1.0) duration."""
        raise NotImplementedError

    def base_duration_s(self) -> float:
        low, high = self.duration_s
        return low + (high - low) * min(max(self.size(), 0.0), 1.0)


class ComputeSum(Params):
    """Add up a list of numbers."""

    task_type = "compute_sum"
    duration_s = (5.0, 15.0)
    numbers: list[Addend] = Field(min_length=1, max_length=10_000)

    def size(self) -> float:
        return (len(self.numbers) - 1) / 9_999


class GenerateReport(Params):
    """Write a plain-text report with a title and some sections."""

    task_type = "generate_report"
    duration_s = (5.0, 24.0)
    title: str = Field(min_length=1, max_length=200)
    sections: JsonInt = Field(3, ge=1, le=20)

    def size(self) -> float:
        return (self.sections - 1) / 19


class BatchEmail(Params):
    """Send one message to many recipients; addresses starting with "bounce" fail."""

    task_type = "batch_email"
    duration_s = (5.0, 30.0)
    recipients: list[EmailAddress] = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=200)

    def size(self) -> float:
        return (len(self.recipients) - 1) / 99


class DataProcessing(Params):
    """Generate rows of measurements and summarise them."""

    task_type = "data_processing"
    duration_s = (5.0, 30.0)
    rows: JsonInt = Field(ge=1, le=1_000_000)

    def size(self) -> float:
        return (self.rows - 1) / 999_999


class ImageProcessing(Params):
    """Resize, convert or thumbnail a batch of images."""

    task_type = "image_processing"
    duration_s = (5.0, 30.0)
    count: JsonInt = Field(ge=1, le=50)
    operation: Literal["resize", "convert", "thumbnail"]

    def size(self) -> float:
        return (self.count - 1) / 49


class FindLongestConsecutiveLetters(Params):
    """Find the longest run of one repeated letter in a string."""

    task_type = "find_longest_consecutive_letters"
    duration_s = (5.0, 15.0)
    string: str = Field(min_length=1, max_length=100_000)

    def size(self) -> float:
        return (len(self.string) - 1) / 99_999


class UnstableTask(Params):
    """Do nothing useful, then fail with probability failure_rate."""

    task_type = "unstable_task"
    duration_s = (5.0, 10.0)
    failure_rate: float = Field(0.5, ge=0, le=1, allow_inf_nan=False)

    def size(self) -> float:
        return self.failure_rate


TaskTypeName = Literal[
    "compute_sum",
    "generate_report",
    "batch_email",
    "data_processing",
    "image_processing",
    "find_longest_consecutive_letters",
    "unstable_task",
]

TASK_TYPES: dict[str, type[Params]] = {
    params.task_type: params
    for params in (
        ComputeSum,
        GenerateReport,
        BatchEmail,
        DataProcessing,
        ImageProcessing,
        FindLongestConsecutiveLetters,
        UnstableTask,
    )
}


if set(TASK_TYPES) != set(get_args(TaskTypeName)):
    raise RuntimeError("TaskTypeName must list exactly the registered task types")


class Submission(BaseModel):
    """Fields shared by every task submission; one subclass per type pins ``task_type``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task_type: str
    parameters: Params
    priority: Priority = "normal"


def _submission_model(params: type[Params]) -> type[Submission]:
    tag: Any = Literal[params.task_type]
    # "parameters" may be left out only when every parameter has a default.
    optional = not any(field.is_required() for field in params.model_fields.values())
    return create_model(
        f"{params.__name__}Submission",
        __base__=Submission,
        task_type=(tag, ...),
        parameters=(params, Field(default_factory=params) if optional else ...),
    )


SUBMISSIONS = tuple(_submission_model(params) for params in TASK_TYPES.values())
if TYPE_CHECKING:
    SubmissionUnion = Submission
else:
    # The submission models are made at run time, so type checkers see their base class.
    SubmissionUnion = Union[SUBMISSIONS]  # noqa: UP007
TaskSubmission = Annotated[SubmissionUnion, Field(discriminator="task_type")]
"""The body of ``POST /tasks``: a union discriminated by ``task_type``."""


class Work:
    """The simulated effort of one job: ``duration_s`` of sleep in steps, reporting progress.

    Args:
        duration_s: total time to spend, already scaled by ``TASKWIRE_WORK_SCALE``.
        report: called with the fraction done, 0.0-1.0, after every tick.
    """

    def __init__(self, duration_s: float, report: Callable[[float], Awaitable[None]]) -> None:
        self.duration_s = duration_s
        self._report = report

    async def steps(self, count: int) -> AsyncIterator[int]:
        """Yield ``0..count-1``, spending an equal share of the duration after each.

        Instant work (``TASKWIRE_WORK_SCALE=0``) neither waits nor reports progress: it has
        none to show, and each report is an event (and on Redis a round trip) for nothing.
        """
        if not self.duration_s:
            for step in range(count):
                yield step
            return
        ticks = max(1, math.ceil(self.duration_s / count / TICK_S))
        pause_s = self.duration_s / count / ticks
        for step in range(count):
            yield step
            for tick in range(1, ticks + 1):
                await asyncio.sleep(pause_s)
                await self._report((step + tick / ticks) / count)


async def perform(params: Params, work: Work, rng: random.Random) -> Any:
    """Run one job's work and return its result."""
    match params:
        case ComputeSum(numbers=numbers):
            async for _ in work.steps(10):
                pass
            total = math.fsum(numbers)
            return {"sum": int(total) if total.is_integer() and abs(total) < 2**53 else total}
        case GenerateReport(title=title, sections=sections):
            parts = [title, "=" * len(title)]
            async for step in work.steps(sections):
                parts.append(f"\n{step + 1}. Section {step + 1}\n" + _LOREM)
            return {"report": "\n".join(parts)}
        case BatchEmail(recipients=recipients):
            failed = []
            async for step in work.steps(len(recipients)):
                if recipients[step].startswith("bounce"):
                    failed.append(recipients[step])
            return {"sent": len(recipients) - len(failed), "failed": failed}
        case DataProcessing(rows=rows):
            return await _summarise_rows(rows, work, rng)
        case ImageProcessing(count=count, operation=operation):
            async for _ in work.steps(count):
                pass
            return {"processed": count, "operation": operation}
        case FindLongestConsecutiveLetters(string=string):
            letter, length = _longest_run(string)
            async for _ in work.steps(10):
                pass
            return {"letter": letter, "length": length}
        case UnstableTask(failure_rate=failure_rate):
            async for _ in work.steps(5):
                pass
            if rng.random() < failure_rate:
                raise TaskFailedError(f"simulated failure (failure_rate={failure_rate})")
            return {"ok": True}
        case _:
            raise TypeError(f"no work defined for {type(params).__name__}")


_LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
_CHUNK_ROWS = 10_000


async def _summarise_rows(rows: int, work: Work, rng: random.Random) -> dict[str, Any]:
    # Rows are generated chunk by chunk, one chunk per step, so a million rows never hold
    # the event loop for more than a few milliseconds at a time.
    count, total, total_sq = 0, 0.0, 0.0
    low, high = math.inf, -math.inf
    async for step in work.steps(math.ceil(rows / _CHUNK_ROWS)):
        size = min(_CHUNK_ROWS, rows - step * _CHUNK_ROWS)
        chunk = [rng.gauss(100.0, 15.0) for _ in range(size)]
        count += size
        total += math.fsum(chunk)
        total_sq += math.fsum(value * value for value in chunk)
        low, high = min(low, *chunk), max(high, *chunk)
        await asyncio.sleep(0)  # instant work has no pauses: let other requests in
    mean = total / count
    variance = max(total_sq / count - mean * mean, 0.0)
    return {
        "rows": count,
        "mean": round(mean, 4),
        "stdev": round(math.sqrt(variance), 4),
        "min": round(low, 4),
        "max": round(high, 4),
    }


def _longest_run(string: str) -> tuple[str, int]:
    best_letter, best_length = "", 0
    for char, run in itertools.groupby(string):
        if char.isalpha():
            length = sum(1 for _ in run)
            if length > best_length:
                best_letter, best_length = char, length
    return best_letter, best_length
