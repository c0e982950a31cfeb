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
    reference: str,
    rounds: int,
    seconds: float,
    connections: int = 64,
) -> dict[str, Any]:
    """Requests/s of POST /tasks and GET /tasks/{id} for each contender, and its ratio to
    ``reference``.

    The ratio is taken within each round, from runs back to back (in an order that rotates
    from round to round), and the median of those ratios is reported with their range: on a
    shared machine whose speed drifts, a paired ratio holds where absolute numbers do not.
    """
    names = list(contenders)
    samples: dict[str, dict[str, list[float]]] = {n: {"post": [], "get": []} for n in names}
    with contextlib.ExitStack() as stack:
        servers = {
            n: stack.enter_context(serve(app, **env)) for n, (app, env) in contenders.items()
        }
        paths = {n: f"/tasks/{a_task_id(server)}" for n, server in servers.items()}
        for round_ in range(rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                server = servers[name]
                samples[name]["post"].append(wrk(server.url + "/tasks", seconds, connections, True))
                drained(server)  # the workers catching up would slow the next measurement
            for name in order:
                get = wrk(servers[name].url + paths[name], seconds, connections, False)
                samples[name]["get"].append(get)
    return {
        "rps": {n: {k: median(v) for k, v in by_kind.items()} for n, by_kind in samples.items()},
        "samples": samples,
        "ratio": {
            name: {kind: paired(samples, name, reference, kind) for kind in ("post", "get")}
            for name in names
            if name != reference
        },
    }


def paired(
    samples: dict[str, dict[str, list[float]]], name: str, reference: str, kind: str
) -> dict[str, float]:
    """Median, lowest and highest of the per-round ratios ``name`` / ``reference``."""
    ratios = [a / b for a, b in zip(samples[name][kind], samples[reference][kind], strict=True)]
    return {"median": median(ratios), "low": min(ratios), "high": max(ratios)}


def measure(rounds: int = 5, seconds: float = 4) -> dict[str, Any]:
    throughput = compare(
        {
            "raw ASGI": ("bench.baselines.raw_asgi:app", {}),
            "bare FastAPI": ("bench.baselines.bare_fastapi:app", {}),
            "Taskwire": ("asgi:app", HIGH_LIMIT),
        },
        "bare FastAPI",
        rounds,
        seconds,
    )
    limiter = compare(
        {"limiter on": ("asgi:app", HIGH_LIMIT), "limiter off": ("asgi:app", NO_LIMIT)},
        "limiter off",
        rounds * 2,  # the smallest difference measured here: twice the rounds
        seconds,
    )
    return {"throughput": throughput, "limiter": limiter}


if __name__ == "__main__":
    pin_to_client_cpus()
    import json

    print(json.dumps(measure(rounds=1, seconds=3), indent=2))
