from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from service.tasktypes import TASK_TYPES, Submission, TaskSubmission, Work, perform

SUBMISSION: TypeAdapter[Submission] = TypeAdapter(TaskSubmission)


@pytest.mark.parametrize("params", TASK_TYPES.values(), ids=list(TASK_TYPES))
def test_durations_lie_in_the_advertised_range_between_5_and_30_seconds(params: Any) -> None:
    low, high = params.duration_s
    assert 5 <= low < high <= 30
    schema = params.model_json_schema()
    assert schema["additionalProperties"] is False
    assert params.__doc__


@pytest.mark.parametrize(
    ("body", "base_duration_s"),
    [
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1]}}, 5.0, id="smallest"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1] * 10_000}},
            15.0,
            id="largest",
        ),
        pytest.param(
            {"task_type": "data_processing", "parameters": {"rows": 1_000_000}},
            30.0,
            id="most-rows",
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "t"}},
            7.0,
            id="default-sections",
        ),
    ],
)
def test_base_duration_grows_with_the_job(body: dict[str, Any], base_duration_s: float) -> None:
    assert SUBMISSION.validate_python(body).parameters.base_duration_s() == pytest.approx(
        base_duration_s
    )


@pytest.mark.parametrize(
    ("given", "accepted"),
    [(2, 2), (2.0, 2), (2.5, None), ("2", None), (True, None), (None, None)],
    ids=["int", "integral-float", "fraction", "string", "bool", "null"],
)
def test_integers_are_json_integers(given: object, accepted: int | None) -> None:
    body = {"task_type": "generate_report", "parameters": {"title": "x", "sections": given}}
    if accepted is None:
        with pytest.raises(ValidationError):
            SUBMISSION.validate_python(body)
    else:
        assert SUBMISSION.validate_python(body).parameters.model_dump()["sections"] == accepted


def test_defaults_are_filled_in() -> None:
    assert SUBMISSION.validate_python({"task_type": "unstable_task"}).parameters.model_dump() == {
        "failure_rate": 0.5
    }
    submission = SUBMISSION.validate_python(
        {"task_type": "generate_report", "parameters": {"title": "x"}}
    )
    assert submission.parameters.model_dump() == {"title": "x", "sections": 3}
    assert submission.priority == "normal"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"task_type": "compute_sum", "parameters": {"numbers": []}}, id="sum-empty"),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [0] * 10_001}}, id="sum-10001"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [True]}}, id="sum-bool"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": ["1"]}}, id="sum-string"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [float("nan")]}}, id="sum-nan"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [float("inf")]}}, id="sum-inf"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1.0000000000000002e304]}},
            id="sum-number-over-1e304",
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [-1.0000000000000002e304]}},
            id="sum-number-under-minus-1e304",
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": ""}}, id="title-empty"
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "x" * 201}}, id="title-201"
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "x", "sections": 0}},
            id="sections-0",
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "x", "sections": 21}},
            id="sections-21",
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "x", "sections": 2.5}},
            id="sections-fraction",
        ),
        pytest.param(
            {"task_type": "batch_email", "parameters": {"recipients": [], "subject": "s"}},
            id="no-recipients",
        ),
        pytest.param(
            {
                "task_type": "batch_email",
                "parameters": {"recipients": ["a@example.com"] * 101, "subject": "s"},
            },
            id="101-recipients",
        ),
        pytest.param(
            {
                "task_type": "batch_email",
                "parameters": {"recipients": ["not-an-address"], "subject": "s"},
            },
            id="bad-address",
        ),
        *[
            pytest.param(
                {"task_type": "batch_email", "parameters": {"recipients": [bad], "subject": "s"}},
                id=f"address-{name}",
            )
            for name, bad in [
                ("no-dot", "a@localhost"),
                ("space", "a b@example.com"),
                ("two-ats", "a@b@example.com"),
                ("control", "a\x00@example.com"),
                ("too-long", "a@" + "b" * 250 + ".com"),
            ]
        ],
        pytest.param(
            {
                "task_type": "batch_email",
                "parameters": {"recipients": ["a@example.com"], "subject": ""},
            },
            id="subject-empty",
        ),
        pytest.param({"task_type": "data_processing", "parameters": {"rows": 0}}, id="rows-0"),
        pytest.param(
            {"task_type": "data_processing", "parameters": {"rows": 1_000_001}}, id="rows-1000001"
        ),
        pytest.param(
            {"task_type": "image_processing", "parameters": {"count": 51, "operation": "resize"}},
            id="count-51",
        ),
        pytest.param(
            {"task_type": "image_processing", "parameters": {"count": 1, "operation": "rotate"}},
            id="operation-unknown",
        ),
        pytest.param(
            {"task_type": "find_longest_consecutive_letters", "parameters": {"string": ""}},
            id="string-empty",
        ),
        pytest.param(
            {
                "task_type": "find_longest_consecutive_letters",
                "parameters": {"string": "a" * 100_001},
            },
            id="string-100001",
        ),
        pytest.param(
            {"task_type": "unstable_task", "parameters": {"failure_rate": 1.01}}, id="rate-over-1"
        ),
        pytest.param(
            {"task_type": "unstable_task", "parameters": {"failure_rate": -0.1}}, id="rate-negative"
        ),
        pytest.param(
            {"task_type": "unstable_task", "parameters": {"failure_rate": float("nan")}},
            id="rate-nan",
        ),
        pytest.param(
            {"task_type": "unstable_task", "parameters": {"extra": 1}}, id="unknown-parameter"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1]}, "extra": 1},
            id="unknown-field",
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1]}, "priority": "urgent"},
            id="bad-priority",
        ),
        pytest.param({"task_type": "nope"}, id="unknown-type"),
    ],
)
def test_invalid_submissions(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SUBMISSION.validate_python(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [0] * 10_000}}, id="sum-10000"
        ),
        pytest.param(
            {"task_type": "generate_report", "parameters": {"title": "x" * 200, "sections": 20}},
            id="report-max",
        ),
        pytest.param(
            {
                "task_type": "batch_email",
                "parameters": {"recipients": ["a@example.com"] * 100, "subject": "s" * 200},
            },
            id="email-max",
        ),
        pytest.param(
            {"task_type": "data_processing", "parameters": {"rows": 1_000_000}}, id="rows-max"
        ),
        pytest.param(
            {
                "task_type": "image_processing",
                "parameters": {"count": 50, "operation": "thumbnail"},
            },
            id="count-max",
        ),
        pytest.param(
            {
                "task_type": "find_longest_consecutive_letters",
                "parameters": {"string": "a" * 100_000},
            },
            id="string-max",
        ),
        pytest.param(
            {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}, id="rate-1"
        ),
        pytest.param(
            {"task_type": "compute_sum", "parameters": {"numbers": [1e304] * 10_000}},
            id="sum-largest-total",
        ),
    ],
)
def test_the_largest_valid_submissions_are_accepted(body: dict[str, Any]) -> None:
    SUBMISSION.validate_python(body)


@pytest.mark.parametrize(
    "address", ["a@example.com", "first.last+tag@mail.example.org", "=}k{?@x.test", "ü@bücher.de"]
)
def test_addresses_are_checked_for_syntax_only(address: str) -> None:
    body = {"task_type": "batch_email", "parameters": {"recipients": [address], "subject": "s"}}
    assert SUBMISSION.validate_python(body).parameters.model_dump()["recipients"] == [address]


class Reports(list[float]):
    """A progress report callback that keeps what it is told (Work awaits each report)."""

    async def __call__(self, fraction: float) -> None:
        self.append(fraction)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The work's sleeps, noted and not slept."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("service.tasktypes.asyncio.sleep", fake_sleep)
    return slept


async def test_work_reports_progress_up_to_done_in_even_steps(no_sleep: list[float]) -> None:
    reports = Reports()
    work = Work(0.4, reports)
    steps = [step async for step in work.steps(4)]
    assert steps == [0, 1, 2, 3]
    assert reports == [0.25, 0.5, 0.75, 1.0]


async def test_instant_work_reports_no_progress() -> None:
    reports = Reports()
    assert [step async for step in Work(0.0, reports).steps(4)] == [0, 1, 2, 3]
    assert reports == []


async def test_work_waits_for_each_report_before_it_goes_on(no_sleep: list[float]) -> None:
    log: list[str] = []

    async def report(fraction: float) -> None:
        log.append(f"report {fraction}")
        await asyncio.sleep(0)  # a report that has to wait, as a backend write does
        log.append("reported")

    async for step in Work(0.2, report).steps(2):
        log.append(f"step {step}")
    assert log == ["step 0", "report 0.5", "reported", "step 1", "report 1.0", "reported"]


async def test_long_steps_are_split_into_ticks_so_progress_moves_smoothly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("service.tasktypes.asyncio.sleep", fake_sleep)
    reports = Reports()
    async for _ in Work(2.0, reports).steps(2):
        pass
    assert slept == [0.25] * 8  # no pause longer than TICK_S
    assert reports == [n / 8 for n in range(1, 9)]


def test_instant_work_runs_its_steps_without_waiting_or_reporting() -> None:
    reports: list[float] = []

    async def report(fraction: float) -> None:
        reports.append(fraction)

    async def run() -> list[int]:
        return [step async for step in Work(0, report).steps(10)]

    coroutine = run()
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)  # to its end in one go, never giving way to the event loop
    assert done.value.value == list(range(10))
    assert reports == []


async def test_instant_work_on_many_rows_lets_the_event_loop_serve_others_meanwhile() -> None:
    # TASKWIRE_WORK_SCALE=0 has no pauses: a million rows (half a second of CPU) must still
    # not hold the loop, which every request of the process shares, in one piece.
    order: list[str] = []

    async def others() -> None:
        while "done" not in order:
            order.append("served")
            await asyncio.sleep(0)

    async def instant() -> None:
        params = TASK_TYPES["data_processing"].model_validate({"rows": 30_000})
        await perform(params, Work(0.0, report=nothing), random.Random(1))
        order.append("done")

    async def nothing(fraction: float) -> None:
        raise AssertionError("instant work reports no progress")

    await asyncio.gather(instant(), others())
    assert order.index("done") > 1  # others were served while its chunks were made
