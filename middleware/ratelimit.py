"""Rate limiting: at most ``limit`` requests per client address in a sliding window.

The counting itself is the counter's (one in memory, or one shared through Redis); this layer
decides what is counted, answers the refused with 429 problem JSON, and puts the IETF
rate-limit fields (draft-ietf-httpapi-ratelimit-headers) on every counted answer.

Where the counter is shared (each count a round trip to its store), a request the app says it
counts itself is not counted here first: the layer leaves a ``Pending`` count in the scope, the
app hands it to its store with its own call (one round trip for both), and the layer answers
from the decision that comes back, or counts the request itself if none did.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.headers import add_headers
from middleware.problem import Problem

logger = logging.getLogger("taskwire.ratelimit")

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
POLICY = "per-ip"

KeyOf = Callable[[Scope], tuple[str, str] | None]
"""What a request is counted against: ``(policy name, key)``, or None for not at all."""


def by_address(scope: Scope) -> tuple[str, str]:
    """Each client address has its quota (the default)."""
    client = scope.get("client")
    return POLICY, client[0] if client else "-"


class RateCounter(Protocol):
    """Counts requests per key; ``hit`` is ``(allowed, remaining, reset_s)``."""

    @property
    def limit(self) -> int: ...

    @property
    def window_s(self) -> int: ...

    async def hit(self, key: str) -> tuple[bool, int, int]: ...


HitNow = Callable[[str], tuple[bool, int, int]]

REMEMBERED_MOST = 10_000
"""Keys whose refusal by a counter elsewhere is remembered here at once, at most."""
MARGIN_S = 0.05
"""How long before the counter's window could free a remembered refusal ends (the round trip
that brought the refusal took time too)."""

PENDING = "ratelimit.pending"
"""The scope key of a request's ``Pending`` count, where the app counts the request itself."""


class Pending:
    """A request's count, left to the app to make along with its own call to the store.

    Whatever counts it (``key`` against ``limit`` per ``window_s``) calls ``decide``.
    """

    __slots__ = ("decision", "key", "limit", "window_s")

    def __init__(self, key: str, limit: int, window_s: int) -> None:
        self.key = key
        self.limit = limit
        self.window_s = window_s
        self.decision: tuple[bool, int, int] | None = None

    def decide(self, allowed: bool, remaining: int, reset_s: int) -> None:
        self.decision = (allowed, remaining, reset_s)


class RateLimitMiddleware:
    """Counts each request against its client address and refuses those over the limit.

    A long-poll or a stream counts once, when it opens. Exempt paths, path prefixes and CORS
    preflights are not counted and get no rate-limit headers.

    Args:
        counter: where requests are counted.
        exempt_paths: exact paths not counted.
        exempt_prefixes: path prefixes not counted (static files).
        key_of: what a request is counted against, and the policy's name in the headers
            (by default its client address, ``per-ip``); None lets it through uncounted.
        on_refused: told of each request refused (a metric, say).
        clock: monotonic seconds, for remembering a counter's refusals.
        counts_itself: which requests the app counts itself, with its own call to the store
            (given ``scope[PENDING]``); asked only of a counter not in this process (one
            without ``hit_now``), for which a count is a round trip. The app must count such
            a request before it does anything else for it; if it answers without counting
            it (a request it found invalid, say), the layer counts it then, and a refusal
            replaces the app's answer.

    Notes:
        If the counter fails (its store is unreachable), the request is let through, not
        refused: the limiter is a guard, and the route behind it answers for itself. A
        warning says so when it starts failing, and another when it counts again.

        A refusal by a counter elsewhere (Redis) is remembered until shortly before its window
        could let the key in again, and the key's requests until then are refused here, with
        no round trip and without reading a body: a client hammering past its limit costs
        little. The window only frees as its oldest request leaves, which a remembered
        refusal never outlasts, so nothing is refused that the counter would have allowed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        counter: RateCounter,
        exempt_paths: Collection[str] = (),
        exempt_prefixes: tuple[str, ...] = (),
        key_of: KeyOf = by_address,
        on_refused: Callable[[], object] | None = None,
        counts_itself: Callable[[Scope], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.counter = counter
        self._failing = False
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = exempt_prefixes
        self.key_of = key_of
        self.on_refused = on_refused
        self._policies: dict[str, tuple[tuple[bytes, bytes], bytes]] = {}
        # A counter in this process answers at once: asked without a coroutine, if it can be.
        self._hit_now: HitNow | None = getattr(counter, "hit_now", None)
        self._counts_itself = counts_itself if self._hit_now is None else None
        self._clock = clock
        self._refused: dict[str, tuple[float, float]] = {}
        """By key, a counter elsewhere's refusal: refused here until, and free by (both on
        ``clock``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.exempt_paths
            or path.startswith(self.exempt_prefixes)
            or (scope["method"] == "OPTIONS" and _is_preflight(scope))
        ):
            await self.app(scope, receive, send)
            return

        counted_as = self.key_of(scope)
        if counted_as is None:
            await self.app(scope, receive, send)
            return
        policy, key = counted_as
        if self._refused and (refused := self._refused.get(key)) is not None:
            now = self._clock()
            if now < refused[0]:
                reset_s = math.ceil(refused[1] - now)
                headers = self._fields(policy, 0, reset_s)
                await self._refuse(scope, receive, send, policy, reset_s, headers)
                return
        if self._counts_itself is not None and self._counts_itself(scope):
            await self._pending(scope, receive, send, policy, key)
            return
        try:
            if self._hit_now is not None:
                allowed, remaining, reset_s = self._hit_now(key)
            else:
                allowed, remaining, reset_s = await self.counter.hit(key)
        except Exception:
            self._failed()
            await self.app(scope, receive, send)
            return
        if self._failing:
            self._recovered()
        headers = self._fields(policy, remaining, reset_s)
        if not allowed:
            self._remember(key, reset_s)
            await self._refuse(scope, receive, send, policy, reset_s, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _failed(self) -> None:
        """The counter failed: the request goes through. Said once (with the error) until
        the counter works again, not once per request of an outage."""
        if not self._failing:
            self._failing = True
            logger.warning("the rate-limit counter failed; request let through", exc_info=True)

    def _recovered(self) -> None:
        self._failing = False
        logger.warning("the rate-limit counter works again; requests are counted")

    async def _pending(
        self, scope: Scope, receive: Receive, send: Send, policy: str, key: str
    ) -> None:
        """The app counts the request (``scope[PENDING]``); the answer waits on its decision."""
        pending = scope[PENDING] = Pending(key, self.counter.limit, self.counter.window_s)
        refused = False

        async def send_decided(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start":
                if pending.decision is None:  # the app answered without counting: count now
                    try:
                        pending.decision = await self.counter.hit(key)
                    except Exception:
                        self._failed()
                        await send(message)
                        return
                if self._failing:
                    self._recovered()
                allowed, remaining, reset_s = pending.decision
                headers = self._fields(policy, remaining, reset_s)
                if not allowed:  # whatever the app answered, the answer is a refusal
                    refused = True
                    self._remember(key, reset_s)
                    await self._refuse(scope, receive, send, policy, reset_s, headers)
                    return
                add_headers(message, headers)
            elif refused:
                return
            await send(message)

        await self.app(scope, receive, send_decided)

    def _remember(self, key: str, reset_s: int) -> None:
        """Remember a refusal by a counter elsewhere (one here costs nothing to ask again)."""
        if self._hit_now is not None or reset_s <= 1:
            return
        now = self._clock()
        # reset_s is whole seconds, rounded up: the window frees after reset_s - 1 at least.
        if len(self._refused) >= REMEMBERED_MOST:
            self._refused = {k: v for k, v in self._refused.items() if v[0] > now}
            if len(self._refused) >= REMEMBERED_MOST:
                self._refused.clear()
        self._refused[key] = (now + reset_s - 1 - MARGIN_S, now + reset_s)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        policy: str,
        reset_s: int,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        if self.on_refused is not None:
            self.on_refused()
        who = "this address" if policy == POLICY else "this client"
        refusal = Problem(
            429,
            f"too many requests from {who}; retry in {reset_s} s",
            type=QUOTA_EXCEEDED,
            headers={"Retry-After": str(reset_s)},
        ).response(scope["path"])
        refusal.raw_headers += headers
        await refusal(scope, receive, send)

    def _fields(self, policy: str, remaining: int, reset_s: int) -> list[tuple[bytes, bytes]]:
        policy_header, quota = self._policies.get(policy) or self._policy(policy)
        return [policy_header, (b"ratelimit", quota % (remaining, reset_s))]

    def _policy(self, name: str) -> tuple[tuple[bytes, bytes], bytes]:
        """The policy's header, and its quota's value to fill in, made once per policy."""
        value = f'"{name}";q={self.counter.limit};w={self.counter.window_s}'.encode()
        quota = name.encode().replace(b"%", b"%%")
        known = self._policies[name] = ((b"ratelimit-policy", value), b'"%s";r=%%d;t=%%d' % quota)
        return known


def _is_preflight(scope: Scope) -> bool:
    """A CORS preflight: not counted, as it is the browser's question, not the client's."""
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names
