"""Baseline: the ceiling of the server on this machine. No framework: a dict and orjson.

Besides submit and read, it long-polls as plainly as ASGI allows: ``GET /tasks/{id}?wait=true``
waits on one ``asyncio.Event`` per task, which ``DELETE /tasks/{id}`` sets. That is the floor
for waking many waiters at once: the cost of the server writing each answer, and nothing else.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

TASKS: dict[str, bytes] = {}
WAKE: dict[str, asyncio.Event] = {}
waiting = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global waiting
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    path, method = scope["path"], scope["method"]
    task_id = path[7:] if path.startswith("/tasks/") else ""
    if method == "POST" and path == "/tasks":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        submitted = orjson.loads(body)
        task_id = str(uuid.uuid4())
        task = orjson.dumps({"task_id": task_id, "status": "queued", **submitted})
        TASKS[task_id] = task
        await respond(send, 202, task)
    elif method == "GET" and (found := TASKS.get(task_id)):
        if b"wait=true" in scope["query_string"]:
            waiting += 1
            await WAKE.setdefault(task_id, asyncio.Event()).wait()
            waiting -= 1
            found = TASKS[task_id]
        await respond(send, 200, found)
    elif method == "DELETE" and task_id in TASKS:
        finished_at = datetime.fromtimestamp(time.time(), UTC).isoformat()
        TASKS[task_id] = orjson.dumps({"status": "cancelled", "finished_at": finished_at})
        WAKE.setdefault(task_id, asyncio.Event()).set()
        await respond(send, 200, TASKS[task_id])
    elif path == "/healthz":
        await respond(send, 200, orjson.dumps({"status": "ok", "subscribers": waiting}))
    else:
        await respond(send, 404, b'{"detail":"Not Found"}')


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
