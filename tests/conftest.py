from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import create_app
from service.settings import Settings
from tests.redis_server import redis_server
from tests.support import FakeClock


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests state every setting they rely on; the runner's TASKWIRE_* variables never leak in."""
    for name in list(os.environ):
        if name.startswith("TASKWIRE_"):
            monkeypatch.delenv(name)


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: instant work and no rate limit, unless a test says otherwise."""
    return Settings(**{"work_scale": 0.0, "rate_limit": 0, **overrides})


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the whole run; tests keep apart by key prefix."""
    with redis_server(tmp_path_factory.mktemp("redis"), aof=False) as server:
        yield server.url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(clock: FakeClock) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        return create_app(
            make_settings(**overrides), clock=clock, monotonic=clock, rng=random.Random(7)
        )

    return make
