"""A mixed soak: many clients doing everything at once, then a check that nothing was lost.

    python -m bench.soak [--requests 58000]

One Taskwire server (uvicorn, as ``make bench`` runs it) with quick work; 64 clients send a
mix of submits, reads, long-polls, cancels, retries, lists and health checks, while 20 SSE
subscribers follow ``/events`` throughout. Afterwards every task must be finished, every
subscriber must have seen each task's last event, and no answer may have been a 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import httpx
import uvloop

from bench.common import pin_to_client_cpus, serve

SETTINGS = {
    "TASKWIRE_WORK_SCALE": "0.002",
    "TASKWIRE_RATE_LIMIT": "1000000000",
    "TASKWIRE_MAX_QUEUE": "1000000",
    "TASKWIRE_MAX_TASKS": "1000000",
    "TASKWIRE_EVENT_BUFFER": "1000000",
    "TASKWIRE_SUBSCRIBER_QUEUE": "1000000",
    "TASKWIRE_SUBSCRIBER_BYTES": str(2**30),
}
BODIES = [
    {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3.5]}},
    {"task_type": "unstable_task", "parameters": {"failure_rate": 0.3}},
    {"task_type": "generate_report", "parameters": {"title": "soak", "sections": 2}},
    {"task_type": "data_processing", "parameters": {"rows": 1000}, "priority": "high"},
]
MIX = [("submit", 40), ("read", 25), ("longpoll", 8), ("cancel", 6), ("retry", 6),
       ("list", 5), ("health", 10)]  # fmt: skip


async def client(
    http: httpx.AsyncClient, budget: list[int], ids: list[str], seen: Counter[str]
) -> None:
    kinds, weights = zip(*MIX, strict=True)
    while budget[0] > 0:
        budget[0] -= 1
        kind = random.choices(kinds, weights)[0] if ids else "submit"
        task_id = random.choice(ids) if ids else ""
        match kind:
            case "submit":
                answer = await http.post("/tasks", json=random.choice(BODIES))
                if answer.status_code == 202:
                    ids.append(answer.json()["task_id"])
            case "read":
                answer = await http.get(f"/tasks/{task_id}")
            case "longpoll":
                answer = await http.get(f"/tasks/{task_id}", params={"wait": "true", "timeout": 1})
            case "cancel":
                answer = await http.delete(f"/tasks/{task_id}")
            case "retry":
                answer = await http.post(f"/tasks/{task_id}/retry")
            case "list":
                answer = await http.get("/tasks", params={"limit": 50})
            case _:
                answer = await http.get("/healthz")
        seen[f"{kind} {answer.status_code}"] += 1


async def busy(http: httpx.AsyncClient) -> bool:
    health = (await http.get("/healthz")).json()
    return bool(health["queued"] or health["processing"])


async def follow(url: str, last: dict[str, str], opened: asyncio.Event) -> None:
    """Every event's name by task, the last one winning."""
    async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", f"{url}/events") as s:
        opened.set()
        name = ""
        async for line in s.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name.startswith("task."):
                last[json.loads(line[6:])["task_id"]] = name


async def soak(url: str, requests: int) -> dict[str, Any]:
    ids: list[str] = []
    seen: Counter[str] = Counter()
    followers: list[dict[str, str]] = [{} for _ in range(20)]
    opened = [asyncio.Event() for _ in followers]
    streams = [
        asyncio.create_task(follow(url, last, o)) for last, o in zip(followers, opened, strict=True)
    ]
    for event in opened:
        await event.wait()
    started = time.monotonic()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        budget = [requests]
        await asyncio.gather(*(client(http, budget, ids, seen) for _ in range(64)))
        elapsed = time.monotonic() - started
        while await busy(http):  # noqa: ASYNC110 - another process: no event to await
            await asyncio.sleep(0.1)
        final = {}
        for task_id in ids:
            final[task_id] = (await http.get(f"/tasks/{task_id}")).json()["status"]
    await asyncio.sleep(1)  # the last events reach the followers
    for stream in streams:
        stream.cancel()
    unfinished = [
        i for i, status in final.items() if status not in ("completed", "failed", "cancelled")
    ]
    missed = [
        sum(1 for i, status in final.items() if last.get(i) != f"task.{status}")
        for last in followers
    ]
    return {
        "requests": requests,
        "seconds": round(elapsed, 1),
        "tasks": len(ids),
        "unfinished": len(unfinished),
        "server_errors": sum(n for k, n in seen.items() if int(k.split()[1]) >= 500),
        "subscribers_missing_a_final_event": missed,
        "answers": dict(sorted(seen.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=58_000)
    args = parser.parse_args()
    pin_to_client_cpus()
    with serve(**SETTINGS) as server:
        result = uvloop.run(soak(server.url, args.requests))
        result["rss_mib"] = round(server.rss_kib() / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
