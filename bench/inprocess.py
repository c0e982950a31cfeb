"""CPU per request of an ASGI app called directly, with no server: POST and GET /tasks.

    python -m bench.inprocess asgi:app
    python -m bench.inprocess bench.baselines.lean_fastapi:app

What a change to the app itself costs or saves, without uvicorn and the socket in the figure
(which ``make bench`` includes). Each figure is the best of five runs of ``--requests``
requests, in process CPU time; the workers run between runs, not during them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import time
from typing import Any

import orjson
import uvloop

from bench.http import BODY, HIGH_LIMIT

Message = dict[str, Any]


class _Transport:
    def abort(self) -> None:  # found by the slow-client guard, as uvicorn's is
        return None


class _Cycle:
    """A server's request cycle, as uvicorn's: ``send`` is its method and it holds a transport."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.status = 0
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.body += message.get("body", b"")


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def call(app: Any, method: str, path: str, body: bytes = b"") -> _Cycle:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app answers
        raise AssertionError("unreachable")

    cycle = _Cycle()
    await app(_scope(method, path, body), receive, cycle.send)
    return cycle


async def measure(target: str, requests: int) -> dict[str, float]:
    """Microseconds of CPU per request, POST and GET, the best of five runs."""
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name)
    body = orjson.dumps(BODY)
    async with app.router.lifespan_context(app):
        created = await call(app, "POST", "/tasks", body)
        task_id = orjson.loads(created.body)["task_id"]
        best: dict[str, float] = {}
        for kind in ("post", "get"):
            for _ in range(5):
                gc.collect()
                started = time.process_time()
                for _ in range(requests):
                    if kind == "post":
                        answer = await call(app, "POST", "/tasks", body)
                    else:
                        answer = await call(app, "GET", f"/tasks/{task_id}")
                elapsed_us = (time.process_time() - started) / requests * 1e6
                assert answer.status in (200, 202), answer.status
                best[kind] = min(best.get(kind, elapsed_us), elapsed_us)
                await asyncio.sleep(0.01)  # the workers catch up between runs
    return {kind: round(us, 1) for kind, us in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", help="module:attribute, e.g. asgi:app")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    for variable, value in {**HIGH_LIMIT, "TASKWIRE_LOG_LEVEL": "warning"}.items():
        os.environ.setdefault(variable, value)
    print(args.app, "µs of CPU per request:", uvloop.run(measure(args.app, args.requests)))


if __name__ == "__main__":
    main()
