"""``Idempotency-Key`` on ``POST /tasks``: a retried submit answers as the first one did.

draft-ietf-httpapi-idempotency-key-header. The key (a Structured-Field string, quotes
optional, 1–255 printable ASCII characters) is scoped to the client (its API key, or its
address where keys are off) and marked in flight once the request's body has arrived (within
``TASKWIRE_MAX_BODY``, checked by the layer outside this one): a second request with the key
while the first is being handled is a 409. Not before: a body that takes longer to arrive
than the mark lasts would let a retry in, and both create a task; a retry whose body comes
first is simply the first, and the slow one its replay. The route (``api/routes/tasks.py``)
then either submits the task and records the key with it, in one step of the backend, or, for
a key used before, compares the parsed bodies and answers the same task again (or a 422 if
they differ).
A request answered with anything but 202 leaves no record, so the client may send it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.backend import Backend
from service.errors import BackendUnavailable, IdempotencyKeyInUse
from service.idempotency import IN_FLIGHT_TTL_S, IdempotencyRecord

logger = logging.getLogger("taskwire.idempotency")

HEADER = "Idempotency-Key"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\"]){1,255}"'
_BARE = r"[\x21\x23-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?"
KEY_PATTERN = f"^(?:{_QUOTED}|{_BARE})$"
"""A Structured-Field string (quoted, with ``\\"`` and ``\\\\`` escapes) or the same characters
bare: 1–255 printable ASCII characters either way."""
_KEY = re.compile(KEY_PATTERN)
_ESCAPE = re.compile(r"\\([\\\"])")
SCOPE_KEY = "taskwire.idempotency"


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """What the route needs: the scoped key, and the record of its first request if this is a
    retry (None: this request holds the key, in flight)."""

    scope: str
    record: IdempotencyRecord | None


def parse_key(raw: str) -> str | None:
    """The key a header value names, or None if it is not one."""
    if not _KEY.fullmatch(raw):
        return None
    if raw.startswith('"'):
        return _ESCAPE.sub(r"\1", raw[1:-1])
    return raw


class IdempotencyMiddleware:
    """Marks a submit's Idempotency-Key in flight for as long as its request is handled.

    Args:
        backend: where keys are recorded (with the tasks they created).
        scope_of: whose keys a request's are: its client address, or its API key.
        path: the route that takes the header (``POST`` only).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        backend: Backend,
        scope_of: Callable[[Scope], str],
        path: str = "/tasks",
    ) -> None:
        self.app = app
        self.backend = backend
        self.scope_of = scope_of
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        values = [v for name, v in scope["headers"] if name == b"idempotency-key"]
        if not values:
            await self.app(scope, receive, send)
            return

        key = parse_key(values[0].decode("latin-1").strip()) if len(values) == 1 else None
        if key is None:
            raise RequestValidationError(
                [
                    {
                        "type": "idempotency_key",
                        "loc": ("header", HEADER),
                        "msg": "an Idempotency-Key is a string of 1-255 printable ASCII "
                        "characters, in double quotes or bare, given once",
                        "input": [value.decode("latin-1") for value in values],
                    }
                ]
            )
        body = await _whole_body(receive)
        if body is None:  # the client left before its body was whole: nothing to do
            return
        replayed = False

        async def receive_body() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # (a disconnect, once the answer is on its way)
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        scoped = f"{self.scope_of(scope)}/{key}"
        record = await self.backend.begin_idempotent(scoped, IN_FLIGHT_TTL_S)
        if record is not None and record.in_flight:
            raise IdempotencyKeyInUse()
        scope[SCOPE_KEY] = IdempotentRequest(scoped, record)
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_body, send_noting_status)
        finally:
            if record is None and status != 202:  # refused: no record, the key is free
                try:
                    await self.backend.abandon_idempotent(scoped)
                except BackendUnavailable:
                    logger.warning("could not free an Idempotency-Key; it frees itself in 60 s")


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, once all of it has arrived; None if the client disconnected."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)
