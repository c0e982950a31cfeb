"""Tasks to and from what the Redis scripts keep: each field as a JSON fragment.

The scripts assemble a task's JSON from its fragments in the field order of the task
resource, so the bytes a client gets are the bytes the memory backend would send.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.events import Event
from service.model import TaskStatus


def fragment(value: Any) -> bytes:
    """``value`` as JSON, timestamps in RFC 3339 with a ``Z``, as ``task_json`` writes them."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


class Entry:
    """One entry of the event stream: a task event, or a control entry (``cancel``)."""

    __slots__ = ("data", "event", "id", "name", "task_id")

    def __init__(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self.id = int(entry_id.partition(b"-")[0])
        self.name = fields[b"n"].decode()
        self.task_id = fields[b"t"].decode()
        self.data = fields.get(b"d", b"")  # a cancel's: the token of the claim to stop
        self.event: Event | None = None
        if self.name.startswith("task."):
            self.event = Event(
                self.id,
                self.name,
                self.task_id,
                fields[b"y"].decode(),
                TaskStatus(fields[b"s"].decode()),
                fields[b"d"],
                fields.get(b"o", b"").decode() or None,
                int(fields.get(b"a", b"0")) / 1_000_000,
            )
