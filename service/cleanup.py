"""Cleanup: tasks are removed ``ttl_s`` after they finish, with a ``task.expired`` event."""

from __future__ import annotations

import asyncio

from service.clock import Clock, utc
from service.model import Task
from service.store import TaskStore
from streams.bus import EventBus


class Cleanup:
    """A timer that sweeps expired tasks out of the store.

    Args:
        ttl_s: how long a finished task stays readable.
        interval_s: time between sweeps; an expired task lingers at most this long.
        clock: wall-clock seconds, the same clock that stamped ``finished_at``.
    """

    def __init__(
        self, store: TaskStore, bus: EventBus, *, ttl_s: float, clock: Clock, interval_s: float
    ) -> None:
        self._store = store
        self._bus = bus
        self._ttl_s = ttl_s
        self._clock = clock
        self._interval_s = interval_s

    def sweep(self) -> list[Task]:
        expired = self._store.expire(finished_before=utc(self._clock() - self._ttl_s))
        for task in expired:
            self._bus.publish("task.expired", task)
        return expired

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.sweep()
