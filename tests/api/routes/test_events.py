"""``/events`` and ``/tasks/{task_id}/events``: what is answered before any stream starts.

The streams themselves are tested against a real server, in ``tests/streams/test_sse.py``.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support import Subscriptions, backend_of, bus_of, finished

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}


@pytest.mark.parametrize("stream", ["/events", "/tasks/{task_id}/events"])
async def test_head_of_a_stream_answers_at_once_and_subscribes_to_nothing(
    app: FastAPI, client: httpx.AsyncClient, stream: str
) -> None:
    subscriptions = Subscriptions(bus_of(app))
    task_id = (await client.post("/tasks", json=SUM)).json()["task_id"]
    response = await client.head(stream.format(task_id=task_id))
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert subscriptions.count == 0
    assert bus_of(app).subscriber_count == 0


async def test_a_task_s_history_is_its_timeline_attempt_by_attempt(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    failing = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
    task_id = (await client.post("/tasks", json=failing)).json()["task_id"]
    await finished(backend_of(app), task_id)
    await client.post(f"/tasks/{task_id}/retry")
    await finished(backend_of(app), task_id)
    response = await client.get(f"/tasks/{task_id}/history")
    assert response.status_code == 200
    history = response.json()
    assert history["task_id"] == task_id
    events = history["events"]
    assert [(e["event"], e["attempt"]) for e in events] == [
        ("task.queued", 1),
        ("task.processing", 1),
        ("task.failed", 1),
        ("task.queued", 2),
        ("task.processing", 2),
        ("task.failed", 2),
    ]
    assert all(e["at"].endswith("Z") for e in events)
    failures = [e["error"]["type"] for e in events if e["error"]]
    assert failures == ["TaskFailedError", "TaskFailedError"]
    unknown = await client.get("/tasks/0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11/history")
    assert unknown.status_code == 404
