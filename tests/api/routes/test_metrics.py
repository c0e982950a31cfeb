"""``/metrics``: Prometheus text, read from the backend, the bus and the engine."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from api.prometheus import (
    LABELS,
    REQUEST_BUCKETS_S,
    REQUESTS,
    REQUESTS_HELP,
    Metrics,
    RequestDurations,
    status_class,
)
from service.backends import open_backend
from service.backends.memory import MemoryBackend
from service.model import Task, TaskStatus
from tests.conftest import make_settings
from tests.support import backend_of, client_for, engine_of, finished

REQUEST = "taskwire_http_request_duration_seconds"
SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}


async def test_metrics_are_prometheus_text(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json=SUM)
    assert response.status_code == 202, response.text
    await finished(backend_of(app), response.json()["task_id"])
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'taskwire_tasks{status="completed"} 1.0' in text
    assert "taskwire_metrics_exporter 1.0" in text  # one process: it exports
    assert 'taskwire_tasks_finished_total{status="completed",task_type="compute_sum"} 1.0' in text
    assert 'taskwire_events_total{name="task.completed"} 1.0' in text
    posts = 'taskwire_http_request_duration_seconds_count{method="POST",route="/tasks"'
    assert f'{posts},status="2xx"}} 1.0' in text


async def test_every_ended_task_counts_in_its_series_with_its_run_and_wait(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    failing = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
    for body in (SUM, SUM, {**SUM, "priority": "high"}, failing):
        response = await client.post("/tasks", json=body)
        assert response.status_code == 202, response.text
        await finished(backend_of(app), response.json()["task_id"])
    text = (await client.get("/metrics")).text
    for line in (
        'taskwire_tasks_finished_total{status="completed",task_type="compute_sum"} 3.0',
        'taskwire_tasks_finished_total{status="failed",task_type="unstable_task"} 1.0',
        'taskwire_task_run_seconds_count{outcome="completed",task_type="compute_sum"} 3.0',
        'taskwire_task_run_seconds_count{outcome="failed",task_type="unstable_task"} 1.0',
        'taskwire_task_queued_seconds_count{priority="normal"} 3.0',
        'taskwire_task_queued_seconds_count{priority="high"} 1.0',
    ):
        assert line in text, line


class Uniterable(dict[str, Any]):
    """A dict that refuses to be iterated: reading it whole would cost O(tasks held)."""

    def __iter__(self) -> Any:
        raise AssertionError("the whole store was iterated")

    keys = values = items = __iter__  # type: ignore[assignment]


async def test_a_scrape_counts_thousands_of_tasks_without_reading_them(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_tasks=5000, max_queue=100)
    async with client_for(app) as client:
        await engine_of(app).close()  # nothing moves but what the test moves
        backend = backend_of(app)
        assert isinstance(backend, MemoryBackend)

        async def submitted() -> Task:
            task = Task(
                task_id=str(uuid.uuid4()),
                task_type="compute_sum",
                parameters={"numbers": [1]},
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            return await backend.submit(task, planned_s=1.0)

        for _ in range(3000):
            await submitted()
            await backend.finish(await backend.claim(), TaskStatus.COMPLETED, result={"sum": 1})
        for _ in range(500):
            await backend.cancel((await submitted()).task_id)
        for _ in range(40):
            await submitted()
        backend._store._tasks = Uniterable(backend._store._tasks)
        with pytest.raises(AssertionError, match="iterated"):
            list(backend._store)
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    text = response.text
    assert 'taskwire_tasks{status="completed"} 3000.0' in text
    assert 'taskwire_tasks{status="cancelled"} 500.0' in text
    assert 'taskwire_tasks{status="queued"} 40.0' in text
    assert 'taskwire_tasks{status="failed"} 0.0' in text
    assert "taskwire_queue_depth 40.0" in text


async def test_methods_a_client_makes_up_share_one_label(client: httpx.AsyncClient) -> None:
    for method in ("BREW", "WHEN", "GET"):
        await client.request(method, "/healthz")
    text = (await client.get("/metrics")).text
    labelled = [line for line in text.splitlines() if "duration_seconds_count" in line]
    assert any('method="other"' in line and 'status="4xx"' in line for line in labelled)
    assert not any("BREW" in line or "WHEN" in line for line in labelled)


def test_request_durations_fall_in_the_buckets_histogram_observe_would_choose() -> None:
    metrics = Metrics(open_backend(make_settings()))
    registry = CollectorRegistry()
    reference = Histogram("reference", "", buckets=REQUEST_BUCKETS_S, registry=registry)
    durations = [0.0, 0.0004, 0.0005, 0.0006, 0.01, 0.011, 10, 10.5]
    for seconds in durations:
        metrics.observe_request("/tasks", "GET", 200, seconds)
        reference.observe(seconds)

    def buckets(text: str, name: str) -> list[tuple[str, str, str]]:
        """(series, le, value) of each of the histogram's lines."""
        found = re.findall(
            rf'^{name}_(bucket|sum|count)(?:{{[^}}]*?(le="[^"]*")?[^}}]*}})? (.*)$', text, re.M
        )
        return [(series, le, value) for series, le, value in found]

    ours = buckets(generate_latest(metrics.registry).decode(), REQUEST)
    theirs = buckets(generate_latest(registry).decode(), "reference")
    assert ours and ours == theirs


def test_one_process_request_histogram_reads_as_prometheus_clients_own() -> None:
    # Recorded in plain lists (no lock, no label lookup) and written as Histogram would be.
    observed = [
        (("/tasks", "POST", 2), 0.0003),
        (("/tasks", "POST", 2), 0.004),
        (("/tasks/{task_id}", "GET", 4), 0.7),
        (("/tasks", "POST", 2), 20.0),
        (("/tasks", "POST", 2), 0.0005),  # on a bound: in that bucket
        (("unmatched", "other", 0), 0.001),  # the client left before any answer
    ]
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram(
        REQUESTS, REQUESTS_HELP, LABELS, buckets=REQUEST_BUCKETS_S, registry=theirs
    )
    durations = RequestDurations()
    ours.register(durations)
    for (route, method, status), seconds in observed:
        histogram.labels(route, method, status_class(status * 100)).observe(seconds)
        durations.observe(route, method, status * 100, seconds)
    expected = [
        line for line in generate_latest(theirs).decode().splitlines() if "_created" not in line
    ]
    assert sorted(generate_latest(ours).decode().splitlines()) == sorted(expected)


def test_one_process_request_histogram_keeps_a_bounded_number_of_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.prometheus.MAX_CHILDREN", 2)
    durations = RequestDurations()
    for route in ("/a", "/b", "/c"):
        durations.observe(route, "GET", 200, 0.01)
    [family] = durations.collect()
    assert {sample.labels["route"] for sample in family.samples} == {"/a", "/b"}
