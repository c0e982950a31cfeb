"""The rate-limit counter of the memory backend: a sliding window of request times per key."""

from __future__ import annotations

import math
import time
from collections import deque

from service.clock import Clock


class SlidingWindowCounter:
    """A log of request times per key (a client address), kept for the last ``window_s``.

    Args:
        limit: requests allowed per key within any window.
        window_s: the window's length.
        clock: monotonic seconds.

    Notes:
        A log of request times, in a deque per key, is exact where a fixed window lets a
        client spend twice its quota across a boundary. Refused requests are not logged, so
        a client that keeps hammering is not locked out forever.

        Requests that arrive within ``window_s / 1000`` of each other share one entry, which
        leaves the window with the latest of them: a request may be held up to a thousandth
        of the window longer than an exact log would, never shorter, and a deque holds at
        most ``min(limit, 1000)`` entries whatever the limit (with one entry per request, a
        limit raised out of the way kept hundreds of thousands of timestamps alive).

        Keys quiet for a whole window are forgotten, in one pass at most once per window, so
        memory is bounded by the keys active in the last two windows. ``hit`` has no await
        inside: on one event loop it is atomic without a lock.
    """

    def __init__(self, *, limit: int, window_s: int, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._resolution_s = window_s / 1000
        self._clock = clock
        self._log: dict[str, _Requests] = {}
        self._next_sweep = clock() + window_s

    def __len__(self) -> int:
        return len(self._log)

    async def hit(self, key: str) -> tuple[bool, int, int]:
        return self.hit_now(key)

    def hit_now(self, key: str) -> tuple[bool, int, int]:
        """``hit``, without the coroutine: the rate limiter asks this way when it can."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep()
        requests = self._log.get(key)
        if requests is None:
            requests = self._log[key] = _Requests()
        entries = requests.entries
        horizon = now - self.window_s
        while entries and entries[0][1] <= horizon:
            requests.count -= int(entries.popleft()[2])
        allowed = requests.count < self.limit
        if allowed:
            requests.count += 1
            if entries and now - entries[-1][0] < self._resolution_s:
                last = entries[-1]
                last[1] = now
                last[2] += 1
            else:
                entries.append([now, now, 1])
        reset_s = math.ceil(entries[0][1] - horizon) if entries else 0
        return allowed, self.limit - requests.count, reset_s

    def sweep(self) -> int:
        """Forget every key with no request inside the window; returns how many."""
        now = self._clock()
        self._next_sweep = now + self.window_s
        horizon = now - self.window_s
        quiet = [
            key
            for key, requests in self._log.items()
            if not requests.entries or requests.entries[-1][1] <= horizon
        ]
        for key in quiet:
            del self._log[key]
        return len(quiet)


class _Requests:
    """One key's logged requests: ``[first, last, count]`` entries, oldest first."""

    __slots__ = ("count", "entries")

    def __init__(self) -> None:
        self.entries: deque[list[float]] = deque()
        self.count = 0
