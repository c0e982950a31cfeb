"""Backends under test: the conformance suite runs once per backend named here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from service.backend import Backend
from service.backends.memory import MemoryBackend
from tests.support import FakeClock

BACKENDS = ["memory", "redis"]

MakeBackend = Callable[..., AbstractAsyncContextManager[Backend]]


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_backend(
    backend_kind: str, clock: FakeClock, request: pytest.FixtureRequest
) -> MakeBackend:
    """Builds a started backend of the kind under test, with small limits by default."""

    @asynccontextmanager
    async def make(**limits: Any) -> AsyncIterator[Backend]:
        options: dict[str, Any] = {
            "max_queue": 10,
            "max_tasks": 100,
            "event_buffer": 1000,
            "subscriber_queue": 1000,
            **limits,
        }
        backend: Backend
        match backend_kind:
            case "memory":
                backend = MemoryBackend(**options, clock=clock, monotonic=clock)
            case "redis":
                from service.backends.redis import RedisBackend

                backend = RedisBackend(
                    request.getfixturevalue("redis_url"),
                    prefix=request.getfixturevalue("redis_prefix"),
                    concurrency=options.pop("concurrency", 100),
                    lease_s=options.pop("lease_s", 10.0),
                    **options,
                    clock=clock,
                    rate_clock=clock,
                )
            case _:
                raise AssertionError(backend_kind)
        await backend.start()
        try:
            yield backend
        finally:
            await backend.close()

    return make


@pytest.fixture
async def backend(make_backend: MakeBackend) -> AsyncIterator[Backend]:
    async with make_backend() as backend:
        yield backend
