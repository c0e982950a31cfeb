"""Backends: where Taskwire's state lives, chosen by the scheme of ``TASKWIRE_BACKEND``.

A backend's module is imported only when it is chosen, so the default install never imports
a driver it does not use.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from service.backend import Backend
from service.clock import Clock
from service.settings import Settings


def open_backend(
    settings: Settings, *, clock: Clock = time.time, monotonic: Clock = time.monotonic
) -> Backend:
    """The backend ``settings.backend`` names, not yet started."""
    match urlsplit(settings.backend).scheme:
        case "memory":
            from service.backends.memory import MemoryBackend

            return MemoryBackend(
                max_queue=settings.max_queue,
                max_tasks=settings.max_tasks,
                event_buffer=settings.event_buffer,
                event_buffer_bytes=settings.event_buffer_bytes,
                subscriber_queue=settings.subscriber_queue,
                subscriber_bytes=settings.subscriber_bytes,
                clock=clock,
                monotonic=monotonic,
            )
        case "redis" | "rediss" | "unix":
            from service.backends.redis import RedisBackend

            return RedisBackend(
                settings.backend,
                prefix=settings.redis_prefix,
                max_queue=settings.max_queue,
                max_tasks=settings.max_tasks,
                event_buffer=settings.event_buffer,
                subscriber_queue=settings.subscriber_queue,
                subscriber_bytes=settings.subscriber_bytes,
                concurrency=settings.concurrency,
                lease_s=settings.lease_s,
                clock=clock,
                monotonic=monotonic,
            )
        case scheme:
            raise ValueError(f"no backend for {scheme}://")
