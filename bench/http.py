"""Request throughput with wrk: Taskwire against a bare FastAPI app and a raw ASGI app.

All servers run at once under the same uvicorn flags; wrk hits them in turn, round after
round, so that a noisy moment on this shared machine hurts every contender alike.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Server, median, pin_to_client_cpus, serve

HERE = Path(__file__).parent
BODY = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3, 4.5]}}
OUT_OF_THE_WAY = {
    "TASKWIRE_WORK_SCALE": "0",
    "TASKWIRE_MAX_QUEUE": "10000000",
    "TASKWIRE_MAX_TASKS": "10000000",
}
HIGH_LIMIT = {**OUT_OF_THE_WAY, "TASKWIRE_RATE_LIMIT": "1000000000"}
NO_LIMIT = {**OUT_OF_THE_WAY, "TASKWIRE_RATE_LIMIT": "0"}


def wrk(url: str, seconds: float, connections: int, post: bool) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if post:
        command[1:1] = ["-s", str(HERE / "post.lua")]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def drained(server: Server) -> None:
    """Wait until the workers have run every task queued so far (baselines have none)."""
    while True:
        health = httpx.get(server.url + "/healthz").json()
        if not health.get("queued") and not health.get("processing"):
            return
        time.sleep(0.05)


def a_task_id(server: Server) -> str:
    task_id: str = httpx.post(server.url + "/tasks", json=BODY).json()["task_id"]
    return task_id


def compare(
    contenders: dict[str, tuple[str, dict[str, str]]],
    rounds: int,
    seconds: float,
    connections: int = 64,
) -> dict[str, dict[str, float]]:
    """Median requests/s of POST /tasks and GET /tasks/{id} for each contender."""
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(serve(app, **env)) for name, (app, env) in contenders.items()
        }
        paths = {name: f"/tasks/{a_task_id(server)}" for name, server in servers.items()}
        samples: dict[str, dict[str, list[float]]] = {
            name: {"post": [], "get": []} for name in servers
        }
        for _ in range(rounds):
            for name, server in servers.items():
                samples[name]["post"].append(wrk(server.url + "/tasks", seconds, connections, True))
                drained(server)  # the workers catching up would slow the next measurement
                samples[name]["get"].append(
                    wrk(server.url + paths[name], seconds, connections, False)
                )
    return {
        name: {kind: median(values) for kind, values in by_kind.items()}
        for name, by_kind in samples.items()
    }


def measure(rounds: int = 3, seconds: float = 5) -> dict[str, Any]:
    throughput = compare(
        {
            "raw ASGI": ("bench.baselines.raw_asgi:app", {}),
            "bare FastAPI": ("bench.baselines.bare_fastapi:app", {}),
            "Taskwire": ("asgi:app", HIGH_LIMIT),
        },
        rounds,
        seconds,
    )
    limiter = compare(
        {"limiter on": ("asgi:app", HIGH_LIMIT), "limiter off": ("asgi:app", NO_LIMIT)},
        rounds,
        seconds,
    )
    return {"throughput": throughput, "limiter": limiter}


if __name__ == "__main__":
    pin_to_client_cpus()
    import json

    print(json.dumps(measure(rounds=1, seconds=3), indent=2))
