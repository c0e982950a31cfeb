"""Cleanup: tasks are removed ``ttl_s`` after they finish, with a ``task.expired`` event."""

from __future__ import annotations

import asyncio
import logging

from service.backend import Backend
from service.errors import BackendUnavailable

logger = logging.getLogger("taskwire.cleanup")


class Cleanup:
    """A timer that asks the backend to sweep (expire old finished tasks, recover lost claims)
    and to note the queue depth for ``/stats``.

    Args:
        ttl_s: how long a finished task stays readable.
        interval_s: time between sweeps; an expired task lingers at most this long.
    """

    def __init__(self, backend: Backend, *, ttl_s: float, interval_s: float) -> None:
        self._backend = backend
        self._ttl_s = ttl_s
        self._interval_s = interval_s

    async def sweep(self) -> int:
        return await self._backend.sweep(ttl_s=self._ttl_s)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
                await self._backend.sample()  # the queue and the workers, for /stats
            except BackendUnavailable as exc:
                logger.warning("cleanup skipped: %s", exc)
            except Exception:  # a bug: logged, and the next round still runs
                logger.exception("cleanup failed")
