"""The memory backend's event history: ids counted in this process, the latest events kept."""

from __future__ import annotations

import time
from collections import Counter, deque
from itertools import islice

from service.events import Event, HistoryPage
from service.model import Task


class EventRing:
    """Numbers each event and keeps the latest of them for replay.

    Args:
        capacity: most events kept.
        max_bytes: most bytes of event data kept (the oldest events go first; the newest one
            is always kept, however large).
        first_id: id of the first event. By default it is the current time in microseconds,
            so ids keep increasing across restarts and a client resuming with an id from an
            earlier run is told to resync instead of silently missing the new run's events.
    """

    def __init__(
        self, capacity: int, first_id: int | None = None, *, max_bytes: int = 64 * 2**20
    ) -> None:
        self._events: deque[Event] = deque()
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self.recorded: Counter[str] = Counter()
        """Events recorded so far, by name."""
        first_id = time.time_ns() // 1000 if first_id is None else first_id
        self.last_id = first_id - 1

    def __len__(self) -> int:
        return len(self._events)

    @property
    def bytes(self) -> int:
        return self._bytes

    def record(self, name: str, task: Task, at: float = 0.0) -> Event:
        self.last_id += 1
        event = Event.of(self.last_id, name, task, at)
        self.recorded[name] += 1
        self._events.append(event)
        self._bytes += len(event.data)
        while len(self._events) > self._capacity or (
            self._bytes > self._max_bytes and len(self._events) > 1
        ):
            self._bytes -= len(self._events.popleft().data)
        return event

    def of_task(self, task_id: str) -> list[Event]:
        """The task's events still kept, oldest first (a scan of the history)."""
        return [event for event in self._events if event.task_id == task_id]

    async def after(self, event_id: int, limit: int) -> HistoryPage:
        oldest_kept = self.last_id - len(self._events) + 1
        if not oldest_kept - 1 <= event_id <= self.last_id:
            return HistoryPage([], event_id, more=False, resync=True)
        start = event_id - oldest_kept + 1
        events = list(islice(self._events, start, start + limit))
        through = events[-1].id if events else event_id
        return HistoryPage(events, through, more=through < self.last_id)
