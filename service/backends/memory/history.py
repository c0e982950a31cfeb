"""The memory backend's event history: ids counted in this process, the latest events kept."""

from __future__ import annotations

import time
from collections import deque
from itertools import islice

from service.events import Event
from service.model import Task


class EventRing:
    """Numbers each event and keeps the latest ``capacity`` of them for replay.

    Args:
        capacity: how many of the latest events are kept.
        first_id: id of the first event. By default it is the current time in microseconds,
            so ids keep increasing across restarts and a client resuming with an id from an
            earlier run is told to resync instead of silently missing the new run's events.
    """

    def __init__(self, capacity: int, first_id: int | None = None) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        first_id = time.time_ns() // 1000 if first_id is None else first_id
        self.last_id = first_id - 1

    def __len__(self) -> int:
        return len(self._events)

    def record(self, name: str, task: Task) -> Event:
        self.last_id += 1
        event = Event.of(self.last_id, name, task)
        self._events.append(event)
        return event

    async def after(self, event_id: int) -> tuple[list[Event], bool]:
        oldest_kept = self.last_id - len(self._events) + 1
        if not oldest_kept - 1 <= event_id <= self.last_id:
            return [], True
        return list(islice(self._events, event_id - oldest_kept + 1, None)), False
