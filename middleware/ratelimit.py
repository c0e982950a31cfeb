"""Rate limiting: at most ``limit`` requests per client address in a sliding window.

The counting itself is the counter's (one in memory, or one shared through Redis); this layer
decides what is counted, answers the refused with 429 problem JSON, and puts the IETF
rate-limit fields (draft-ietf-httpapi-ratelimit-headers) on every counted answer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.problem import Problem

logger = logging.getLogger("taskwire.ratelimit")

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
POLICY = "per-ip"


class RateCounter(Protocol):
    """Counts requests per key; ``hit`` is ``(allowed, remaining, reset_s)``."""

    @property
    def limit(self) -> int: ...

    @property
    def window_s(self) -> int: ...

    async def hit(self, key: str) -> tuple[bool, int, int]: ...


class RateLimitMiddleware:
    """Counts each request against its client address and refuses those over the limit.

    A long-poll or a stream counts once, when it opens. Exempt paths, path prefixes and CORS
    preflights are not counted and get no rate-limit headers.

    Args:
        counter: where requests are counted.
        exempt_paths: exact paths not counted.
        exempt_prefixes: path prefixes not counted (static files).

    Notes:
        If the counter fails (its store is unreachable), the request is let through, not
        refused: the limiter is a guard, and the route behind it answers for itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        counter: RateCounter,
        exempt_paths: Collection[str] = (),
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.counter = counter
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = exempt_prefixes
        policy = f'"{POLICY}";q={counter.limit};w={counter.window_s}'.encode()
        self._policy = (b"ratelimit-policy", policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            await self.app(scope, receive, send)
            return

        client = scope.get("client")
        try:
            allowed, remaining, reset_s = await self.counter.hit(client[0] if client else "-")
        except Exception:
            logger.warning("the rate-limit counter failed; request let through", exc_info=True)
            await self.app(scope, receive, send)
            return
        quota = b'"%s";r=%d;t=%d' % (POLICY.encode(), remaining, reset_s)
        headers = [self._policy, (b"ratelimit", quota)]
        if not allowed:
            refusal = Problem(
                429,
                f"too many requests from this address; retry in {reset_s} s",
                type=QUOTA_EXCEEDED,
                headers={"Retry-After": str(reset_s)},
            ).response(scope["path"])
            refusal.raw_headers += headers
            await refusal(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).raw.extend(headers)
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
