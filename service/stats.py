"""The last 15 minutes at a glance: per-interval history of what the service did.

Time is cut into intervals of ``INTERVAL_S``; each keeps the tasks that finished in it by
outcome, the queue depth and tasks processing at its end (sampled every second), and, by task
type, a histogram of run times over fixed, log-spaced bounds, from which percentiles are read.
Histograms merge by adding counts, so every process of a service on Redis adds to the same
ones; the cost of a task finishing is a handful of increments, whatever the traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.clock import utc

INTERVAL_S = 15
"""Length of one interval, in seconds."""
WINDOW_S = 15 * 60
"""How far back the history goes."""
INTERVALS = WINDOW_S // INTERVAL_S
RUN_TIME_BOUNDS_S: tuple[float, ...] = tuple(round(0.01 * 2 ** (n / 2), 4) for n in range(36))
"""Upper bounds of the run-time histogram's buckets: 10 ms to about 40 minutes, each √2 times
the last (a percentile is then known to within about 20%); a last bucket takes the rest."""
OUTCOMES = ("completed", "failed", "cancelled")


def interval_of(timestamp_s: float) -> int:
    """The start (whole seconds since the epoch) of the interval a moment falls in."""
    return int(timestamp_s // INTERVAL_S) * INTERVAL_S


def run_time_bucket(seconds: float) -> int:
    """The index of the histogram bucket a run time falls in."""
    for index, bound in enumerate(RUN_TIME_BOUNDS_S):
        if seconds <= bound:
            return index
    return len(RUN_TIME_BOUNDS_S)


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The run time below which ``fraction`` of the recorded ones fall: the upper bound of
    the bucket that holds it (None when nothing was recorded)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = math.ceil(fraction * total)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return RUN_TIME_BOUNDS_S[min(index, len(RUN_TIME_BOUNDS_S) - 1)]
    return RUN_TIME_BOUNDS_S[-1]  # pragma: no cover - the loop reaches the rank


@dataclass(slots=True)
class Interval:
    """One interval's figures."""

    start: int
    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    queued: int | None = None
    processing: int | None = None
    run_times: dict[str, list[int]] = field(default_factory=dict)
    """By task type: counts per histogram bucket."""

    def record_finish(self, task_type: str, outcome: str, run_time_s: float | None) -> None:
        self.finished[outcome] = self.finished.get(outcome, 0) + 1
        if run_time_s is not None:
            counts = self.run_times.setdefault(task_type, [0] * (len(RUN_TIME_BOUNDS_S) + 1))
            counts[run_time_bucket(run_time_s)] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "start": utc(self.start),
            "finished": self.finished,
            "queued": self.queued,
            "processing": self.processing,
            "run_time_s": {
                task_type: {
                    "count": sum(counts),
                    "p50": percentile(counts, 0.5),
                    "p95": percentile(counts, 0.95),
                }
                for task_type, counts in sorted(self.run_times.items())
            },
        }


def history(intervals: Mapping[int, Interval], now_s: float) -> list[Interval]:
    """The last ``INTERVALS`` intervals up to ``now_s``, oldest first, empty ones included."""
    last = interval_of(now_s)
    starts = range(last - (INTERVALS - 1) * INTERVAL_S, last + INTERVAL_S, INTERVAL_S)
    return [intervals.get(start) or Interval(start) for start in starts]


def stats_json(counts: Mapping[str, int], intervals: Sequence[Interval]) -> dict[str, Any]:
    """The body of ``GET /stats``."""
    return {
        "interval_s": INTERVAL_S,
        "counts": dict(counts),
        "intervals": [interval.as_json() for interval in intervals],
    }
