"""Rate limiting: at most ``limit`` requests per client address in any ``window_s`` seconds."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.clock import Clock

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
POLICY = "per-ip"
HEADERS_SCOPE_KEY = "taskwire.ratelimit_headers"
"""Where the rate-limit fields wait in the scope for an error answer given further out."""


class RateLimited(Exception):
    """The client has used its quota for now."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests from this address; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(slots=True)  # not frozen: made on every request, and frozen ones cost 5x to make
class Decision:
    allowed: bool
    remaining: int
    reset_s: int
    """Whole seconds until the oldest counted request leaves the window, freeing a slot."""


class SlidingWindowLimiter:
    """A log of request times per client address, kept for the last ``window_s`` seconds.

    Args:
        limit: requests allowed per address within any window.
        window_s: the window's length.
        clock: monotonic seconds.

    Notes:
        A log of request times, in a deque per address, is exact where a fixed window lets a
        client spend twice its quota across a boundary. Refused requests are not logged, so a
        client that keeps hammering is not locked out forever.

        Requests that arrive within ``window_s / 1000`` of each other share one entry, which
        leaves the window with the latest of them: a request may be held up to a thousandth of
        the window longer than an exact log would, never shorter, and a deque holds at most
        ``min(limit, 1000)`` entries whatever the limit (with one entry per request, a limit
        raised out of the way kept hundreds of thousands of timestamps alive). ``sweep``
        forgets addresses quiet for a whole window, so memory is bounded by the addresses
        active in the last window.

        The check-and-record has no await inside, so it is already atomic on the event loop;
        the lock keeps it atomic if the log moves to an awaitable store (e.g. shared Redis).
    """

    def __init__(self, *, limit: int, window_s: int, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._resolution_s = window_s / 1000
        self._clock = clock
        self._log: dict[str, _Requests] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._log)

    @property
    def policy(self) -> bytes:
        return f'"{POLICY}";q={self.limit};w={self.window_s}'.encode()

    async def hit(self, address: str) -> Decision:
        async with self._lock:
            now = self._clock()
            requests = self._log.get(address)
            if requests is None:
                requests = self._log[address] = _Requests()
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
            return Decision(allowed, self.limit - requests.count, reset_s)

    def sweep(self) -> int:
        """Forget every address with no request inside the window; returns how many."""
        horizon = self._clock() - self.window_s
        quiet = [
            address
            for address, requests in self._log.items()
            if not requests.entries or requests.entries[-1][1] <= horizon
        ]
        for address in quiet:
            del self._log[address]
        return len(quiet)

    async def run_sweeps(self) -> None:
        while True:
            await asyncio.sleep(self.window_s)
            self.sweep()


class _Requests:
    """One address's logged requests: ``[first, last, count]`` entries, oldest first."""

    __slots__ = ("count", "entries")

    def __init__(self) -> None:
        self.entries: deque[list[float]] = deque()
        self.count = 0


class RateLimitMiddleware:
    """Counts each request against its client address and refuses those over the limit.

    A long-poll or a stream counts once, when it opens. Exempt paths, path prefixes and CORS
    preflights are not counted and get no rate-limit headers.

    Args:
        limiter: the shared request log.
        exempt_paths: exact paths not counted.
        exempt_prefixes: path prefixes not counted (static files).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: SlidingWindowLimiter,
        exempt_paths: Collection[str] = (),
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = exempt_prefixes
        self._policy = (b"ratelimit-policy", limiter.policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            await self.app(scope, receive, send)
            return

        client = scope.get("client")
        decision = await self.limiter.hit(client[0] if client else "unknown")
        quota = f'"{POLICY}";r={decision.remaining};t={decision.reset_s}'.encode()
        headers = [self._policy, (b"ratelimit", quota)]
        # An error answer is sent by ErrorMiddleware, outside this one, past send_with_headers.
        scope[HEADERS_SCOPE_KEY] = headers
        if not decision.allowed:
            raise RateLimited(decision.reset_s)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _is_exempt(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in self.exempt_paths or path.startswith(self.exempt_prefixes):
            return True
        if scope["method"] != "OPTIONS":
            return False
        names = {name for name, _ in scope["headers"]}
        return b"origin" in names and b"access-control-request-method" in names
