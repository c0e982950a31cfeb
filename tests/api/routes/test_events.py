"""``/events`` and ``/tasks/{task_id}/events``: what is answered before any stream starts.

The streams themselves are tested against a real server, in ``tests/streams/test_sse.py``.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support import Subscriptions, bus_of

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
