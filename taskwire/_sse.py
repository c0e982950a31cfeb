"""Where an SSE feed stands, so that it can resume: the events themselves are parsed by
``httpx-sse``; this turns them into typed items and remembers what a reconnect needs.

As an ``EventSource`` does: each ``id:`` seen becomes the ``Last-Event-ID`` of the next
connection (the service opens ``/events`` with a bare ``id:`` line, its starting point, so
even a connection that drops before its first event resumes from there), and ``retry:`` sets
how long to wait before reconnecting. A block without data fires nothing.
"""

from __future__ import annotations

import json

from httpx_sse import ServerSentEvent

from taskwire.models import Resync, StreamItem, Task, TaskEvent

DEFAULT_RETRY_S = 3.0
"""The reconnection delay until the service says otherwise (it sends ``retry: 3000``)."""


class FeedPosition:
    """The resume point and reconnection delay of one feed, across its connections."""

    def __init__(self, last_event_id: int | str | None = None) -> None:
        self.last_event_id = None if last_event_id is None else str(last_event_id)
        self.retry_s = DEFAULT_RETRY_S
        self._highest: int | None = None
        if self.last_event_id is not None and self.last_event_id.isdigit():
            self._highest = int(self.last_event_id)

    def headers(self) -> dict[str, str]:
        """The headers of the next connection."""
        return {} if self.last_event_id is None else {"Last-Event-ID": self.last_event_id}

    def take(self, sse: ServerSentEvent) -> StreamItem | None:
        """The item ``sse`` stands for, or None for a block that only moves the position, an
        event this client has already had (a task stream restarts from the task's state), or
        an event this client does not know."""
        if sse.retry is not None:
            self.retry_s = sse.retry / 1000
        if sse.id:
            self.last_event_id = sse.id
        if sse.event == "resync":
            return Resync(int(sse.id) if sse.id.isdigit() else None)
        if not sse.data or not sse.event.startswith("task.") or not sse.id.isdigit():
            return None
        event_id = int(sse.id)
        if self._highest is not None and event_id <= self._highest:
            return None
        self._highest = event_id
        return TaskEvent(event_id, sse.event, Task.from_json(json.loads(sse.data)))
