"""Helpers for testing one middleware on its own: a raw ASGI exchange, and its log lines.

Most middleware tests build a tiny Starlette app and talk to it with httpx; these are for
what a client cannot see through httpx's transport (an answer broken off mid-body, the
moment a request is counted, a body arriving in chunks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Scope


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: Sequence[tuple[bytes, bytes]] = (),
    client: tuple[str, int] | None = ("192.0.2.1", 40000),
    **extra: Any,
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": list(headers),
        "client": client,
        "server": ("tw", 80),
        **extra,
    }


@dataclass
class Exchange:
    """One request played against an ASGI app: what it read and what it sent."""

    body: Sequence[bytes] = (b"",)
    sent: list[Message] = field(default_factory=list)
    chunks_read: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self) -> Message:
        if self.chunks_read < len(self.body):
            chunk = self.body[self.chunks_read]
            self.chunks_read += 1
            more = self.chunks_read < len(self.body)
            return {"type": "http.request", "body": chunk, "more_body": more}
        await self.gone.wait()  # the client stays until the test says it has left
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.start":
            self.started.set()

    async def run(self, app: ASGIApp, scope: Scope) -> Exchange:
        await app(scope, self.receive, self.send)
        return self

    @property
    def status(self) -> int:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        status: int = start["status"]
        return status

    @property
    def headers(self) -> dict[str, str]:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}

    @property
    def content(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def handshake(app: ASGIApp, scope: Scope) -> list[Message]:
    """A WebSocket handshake played against ``app``: what it sent back."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


class Records(logging.Handler):
    """The records one logger emitted while it was watched."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    @property
    def levels(self) -> set[str]:
        return {record.levelname for record in self.records}


@contextmanager
def logged(name: str, level: int = logging.DEBUG) -> Iterator[Records]:
    """Watch the logger ``name`` at ``level``, whatever the app's logging setup made of it."""
    logger = logging.getLogger(name)
    handler, previous = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
