"""Baseline: the ceiling of the server on this machine. No framework: a dict and orjson."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

TASKS: dict[str, bytes] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    path, method = scope["path"], scope["method"]
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
    elif method == "GET" and path.startswith("/tasks/") and (found := TASKS.get(path[7:])):
        await respond(send, 200, found)
    elif path == "/healthz":
        await respond(send, 200, b'{"status":"ok"}')
    else:
        await respond(send, 404, b'{"detail":"Not Found"}')


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
