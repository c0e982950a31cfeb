"""The two ways to run Taskwire, as real processes: ``uvicorn asgi:app`` and gunicorn."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.processes import spawn


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_serves_the_api_and_stops_on_sigterm(server: str) -> None:
    with spawn(server, TASKWIRE_WORK_SCALE="0") as (url, process):
        body = {"task_type": "compute_sum", "parameters": {"numbers": [2, 3]}}
        submitted = httpx.post(f"{url}/tasks", json=body)
        assert submitted.status_code == 202
        assert submitted.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'  # the default holds
        task = submitted.json()
        while task["status"] != "completed":
            task = httpx.get(f"{url}/tasks/{task['task_id']}", params={"wait": "true"}).json()
        assert task["result"] == {"sum": 5}
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly; gunicorn exits 0.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
        assert process.stderr is not None
        log = process.stderr.read().decode()
    assert "Application shutdown complete" in log or "Shutting down: Master" in log
    assert '"POST /tasks" 202' in log  # Taskwire's own access line
