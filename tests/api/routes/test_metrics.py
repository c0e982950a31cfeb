"""``/metrics``: Prometheus text, read from the backend, the bus and the engine."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support import backend_of, finished

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
