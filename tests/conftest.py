from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings
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
