"""Clocks are injected so tests can move time instead of waiting for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Seconds as a float: ``time.time`` for timestamps, ``time.monotonic`` for intervals."""


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
