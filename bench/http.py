"""Request throughput with wrk: Taskwire against a bare FastAPI app and a raw ASGI app.

The servers run at once, under the same uvicorn flags, all on the same CPU, and each is loaded
by its own wrk at the same time (wrk on the other CPU). Saturated, they share that CPU evenly,
so the ratio of their throughputs is the inverse ratio of their cost per request, and a slow
moment of this shared machine slows them all alike. Measured in turns instead, the same two
servers differed by up to 30% from one run to the next; side by side, by about 1%.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Mapping
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


def wrk_all(
    urls: dict[str, str], seconds: float, connections: int | Mapping[str, int], post: bool
) -> dict[str, float]:
    """Load every URL at once, each with its own wrk (``connections`` each, or by name);
    returns requests/s by name."""
    script = ["-s", str(HERE / "post.lua")] if post else []
    per_url = connections if isinstance(connections, Mapping) else dict.fromkeys(urls, connections)
    loads = {
        name: subprocess.Popen(
            ["wrk", *script, "-t1", f"-c{per_url[name]}", f"-d{seconds:g}s", url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, url in urls.items()
    }
    return {
        name: _requests_per_s(urls[name], load.communicate()[0]) for name, load in loads.items()
    }


def _requests_per_s(url: str, output: str) -> float:
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
    """Requests/s of POST /tasks and GET /tasks/{id} for each contender, all loaded at once,
    and each one's ratio to ``reference`` within each round (median and range)."""
    names = list(contenders)
    samples: dict[str, dict[str, list[float]]] = {n: {"post": [], "get": []} for n in names}
    with contextlib.ExitStack() as stack:
        servers = {
            n: stack.enter_context(serve(app, **env)) for n, (app, env) in contenders.items()
        }
        reads = {n: f"{server.url}/tasks/{a_task_id(server)}" for n, server in servers.items()}
        for round_ in range(rounds):
            # Whose load starts first alternates, so that no server gains by its place.
            order = names if round_ % 2 == 0 else names[::-1]
            posts = wrk_all(
                {n: f"{servers[n].url}/tasks" for n in order}, seconds, connections, True
            )
            for server in servers.values():
                drained(server)  # the workers catching up would slow the next measurement
            gets = wrk_all({n: reads[n] for n in order}, seconds, connections, False)
            for name in names:
                samples[name]["post"].append(posts[name])
                samples[name]["get"].append(gets[name])
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
            "lean FastAPI": ("bench.baselines.lean_fastapi:app", {}),
            "Taskwire": ("asgi:app", HIGH_LIMIT),
        },
        "bare FastAPI",
        rounds,
        seconds,
    )
    limiter = compare(
        {"limiter on": ("asgi:app", HIGH_LIMIT), "limiter off": ("asgi:app", NO_LIMIT)},
        "limiter off",
        rounds,
        seconds,
    )
    metrics = compare(
        {
            "metrics on": ("asgi:app", HIGH_LIMIT),
            "metrics off": ("bench.variants:no_request_metrics", HIGH_LIMIT),
        },
        "metrics off",
        rounds,
        seconds,
    )
    return {"throughput": throughput, "limiter": limiter, "metrics": metrics}


if __name__ == "__main__":
    pin_to_client_cpus()
    import json

    print(json.dumps(measure(rounds=1, seconds=3), indent=2))
