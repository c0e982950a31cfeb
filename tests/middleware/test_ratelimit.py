"""RateLimitMiddleware on its own: what is counted, the IETF fields, and the 429 it answers.

The counting itself (the sliding window) is the counter's, tested with the memory backend
(tests/service/backends/memory/test_ratelimit.py); here it is a SlidingWindowCounter on a
fake clock, wrapped to record what it was asked. The middleware's place in Taskwire's stack
(exempt paths, CORS around it, errors within it) is tested in tests/api/test_app.py.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from middleware.accesslog import AccessLogMiddleware
from middleware.cors import CORSMiddleware
from middleware.errors import ErrorMiddleware
from middleware.problem import PROBLEM_JSON, Problem
from middleware.ratelimit import PENDING, QUOTA_EXCEEDED, Pending, RateLimitMiddleware
from service.backends.memory.ratelimit import SlidingWindowCounter
from tests.middleware.harness import Exchange, http_scope, logged
from tests.support import FakeClock

UI = "http://ui.example"
PREFLIGHT = {"origin": UI, "access-control-request-method": "POST"}


class Counter:
    """A sliding-window counter on a fake clock that records every key it counts."""

    def __init__(self, clock: FakeClock, limit: int = 10, window_s: int = 60) -> None:
        self.window = SlidingWindowCounter(limit=limit, window_s=window_s, clock=clock)
        self.limit, self.window_s = limit, window_s
        self.keys: list[str] = []

    async def hit(self, key: str) -> tuple[bool, int, int]:
        self.keys.append(key)
        return await self.window.hit(key)


class BrokenCounter:
    """A counter whose store is unreachable."""

    limit, window_s = 10, 60

    async def hit(self, key: str) -> tuple[bool, int, int]:
        raise ConnectionError("the counter's store is unreachable")


class Endpoint:
    """The app behind the limiter: counts the requests that reach it."""

    def __init__(self) -> None:
        self.reached = 0

    async def handle(self, request: Request) -> Response:
        self.reached += 1
        if request.url.path == "/missing":
            raise LookupError(request.url.path)
        return PlainTextResponse("ok")


def not_found(exc: Exception) -> Problem | None:
    return Problem(404, f"nothing at {exc}") if isinstance(exc, LookupError) else None


def tiny_app(counter: object, endpoint: Endpoint | None = None, *outer: Middleware) -> Starlette:
    endpoint = endpoint or Endpoint()
    return Starlette(
        routes=[
            Route("/{path:path}", endpoint.handle, methods=["GET", "POST", "OPTIONS"]),
        ],
        middleware=[
            Middleware(AccessLogMiddleware),
            *outer,
            Middleware(
                RateLimitMiddleware,
                counter=counter,
                exempt_paths={"/healthz"},
                exempt_prefixes=("/assets/",),
            ),
            Middleware(ErrorMiddleware, classify=not_found),
        ],
    )


def client(app: Starlette, address: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://tw")


async def test_counted_answers_carry_the_ietf_fields(clock: FakeClock) -> None:
    async with client(tiny_app(Counter(clock))) as c:
        first = await c.get("/tasks")
        clock.advance(12)
        second = await c.get("/tasks")
    assert first.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'
    assert first.headers["ratelimit"] == '"per-ip";r=9;t=60'
    assert second.headers["ratelimit"] == '"per-ip";r=8;t=48'


async def test_the_policy_names_the_counters_limit_and_window(clock: FakeClock) -> None:
    async with client(tiny_app(Counter(clock, limit=3, window_s=5))) as c:
        response = await c.get("/tasks")
    assert response.headers["ratelimit-policy"] == '"per-ip";q=3;w=5'
    assert response.headers["ratelimit"] == '"per-ip";r=2;t=5'


async def test_a_policy_named_by_key_of_is_written_as_named(clock: FakeClock) -> None:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("ok")(scope, receive, send)

    for policy in ("per-key", "50%-off"):  # a name is text, never a format
        limiter = RateLimitMiddleware(
            answer,
            counter=Counter(clock, limit=3, window_s=5),
            key_of=lambda _, policy=policy: (policy, "k"),
        )
        exchange = await Exchange().run(limiter, http_scope("GET", "/tasks"))
        assert exchange.headers["ratelimit-policy"] == f'"{policy}";q=3;w=5'
        assert exchange.headers["ratelimit"] == f'"{policy}";r=2;t=5'


async def test_over_the_limit_the_answer_is_a_429_problem_with_retry_after(
    clock: FakeClock,
) -> None:
    endpoint = Endpoint()
    async with client(tiny_app(Counter(clock), endpoint)) as c:
        answers = []
        for _ in range(11):
            answers.append(await c.get("/tasks"))
            clock.advance(1)
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert endpoint.reached == 10  # the refused request never reached the app
    refused = answers[-1]
    assert refused.headers["content-type"] == PROBLEM_JSON
    problem = refused.json()
    assert problem["type"] == QUOTA_EXCEEDED
    assert (problem["status"], problem["instance"]) == (429, "/tasks")
    assert problem["detail"] == "too many requests from this address; retry in 50 s"
    assert problem["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["retry-after"] == "50"  # the first request leaves the window at 60 s
    assert refused.headers["ratelimit"] == '"per-ip";r=0;t=50'
    assert refused.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'


async def test_error_answers_are_counted_and_carry_the_fields(clock: FakeClock) -> None:
    async with client(tiny_app(Counter(clock))) as c:
        missing = await c.get("/missing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_JSON
    assert missing.headers["ratelimit"] == '"per-ip";r=9;t=60'


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        pytest.param("GET", "/healthz", {}, id="exempt-path"),
        pytest.param("GET", "/assets/app.js", {}, id="exempt-prefix"),
        pytest.param("OPTIONS", "/tasks", PREFLIGHT, id="cors-preflight"),
    ],
)
async def test_exempt_requests_are_not_counted_and_carry_no_fields(
    clock: FakeClock, method: str, path: str, headers: dict[str, str]
) -> None:
    counter = Counter(clock, limit=1)
    endpoint = Endpoint()
    async with client(tiny_app(counter, endpoint)) as c:
        for _ in range(5):
            response = await c.request(method, path, headers=headers)
            assert response.status_code == 200
            assert "ratelimit" not in response.headers
            assert "ratelimit-policy" not in response.headers
        assert (await c.get("/tasks")).status_code == 200  # the one counted request
    assert endpoint.reached == 6
    assert counter.keys == ["192.0.2.1"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-cors-headers"),
        pytest.param({"origin": UI}, id="origin-only"),
        pytest.param({"access-control-request-method": "POST"}, id="method-only"),
    ],
)
async def test_an_options_request_that_is_not_a_preflight_is_counted(
    clock: FakeClock, headers: dict[str, str]
) -> None:
    counter = Counter(clock, limit=1)
    async with client(tiny_app(counter)) as c:
        counted = await c.options("/tasks", headers=headers)
        refused = await c.get("/tasks")
    assert counted.headers["ratelimit"] == '"per-ip";r=0;t=60'
    assert refused.status_code == 429
    assert counter.keys == ["192.0.2.1", "192.0.2.1"]


async def test_addresses_are_counted_apart_by_the_scope_client_not_forwarded_headers(
    clock: FakeClock,
) -> None:
    counter = Counter(clock, limit=1)
    app = tiny_app(counter)
    async with client(app, "192.0.2.1") as first, client(app, "192.0.2.2") as second:
        assert (await first.get("/", headers={"x-forwarded-for": "10.0.0.1"})).status_code == 200
        assert (await second.get("/")).status_code == 200  # another address, its own count
        again = await first.get("/", headers={"x-forwarded-for": "10.0.0.2"})
    assert again.status_code == 429  # a forwarded header does not make a new client
    assert counter.keys == ["192.0.2.1", "192.0.2.2", "192.0.2.1"]


async def test_a_request_with_no_client_address_is_counted_under_a_dash(clock: FakeClock) -> None:
    counter = Counter(clock)
    exchange = await Exchange().run(tiny_app(counter), http_scope(path="/tasks", client=None))
    assert exchange.status == 200
    assert counter.keys == ["-"]


async def test_when_the_counter_fails_the_request_is_let_through_with_a_warning() -> None:
    endpoint = Endpoint()
    with logged("taskwire.ratelimit") as logs:
        async with client(tiny_app(BrokenCounter(), endpoint)) as c:
            response = await c.get("/tasks")
    assert (response.status_code, response.text) == (200, "ok")
    assert endpoint.reached == 1
    assert "ratelimit" not in response.headers  # nothing was counted, so nothing is claimed
    [record] = logs.records
    assert record.levelno == logging.WARNING
    assert "request let through" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ConnectionError)


async def test_a_long_poll_is_counted_once_when_it_opens(clock: FakeClock) -> None:
    counter = Counter(clock, limit=2)
    waiting, answer = asyncio.Event(), asyncio.Event()

    async def long_poll(scope: Scope, receive: Receive, send: Send) -> None:
        waiting.set()
        await answer.wait()
        await PlainTextResponse("changed")(scope, receive, send)

    middleware = RateLimitMiddleware(long_poll, counter=counter)
    exchange = Exchange()
    polling = asyncio.create_task(exchange.run(middleware, http_scope(path="/tasks/1")))
    async with asyncio.timeout(10):
        await waiting.wait()
    assert counter.keys == ["192.0.2.1"]  # counted as it opened, before any answer
    answer.set()
    await polling
    assert counter.keys == ["192.0.2.1"]  # and not again when it answered
    assert exchange.status == 200 and exchange.content == b"changed"
    assert exchange.headers["ratelimit"] == '"per-ip";r=1;t=60'


async def test_a_stream_is_counted_once_however_long_it_runs(clock: FakeClock) -> None:
    counter = Counter(clock, limit=2)

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(50):
            clock.advance(1)
            await send({"type": "http.response.body", "body": b"%d\n" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    exchange = await Exchange().run(
        RateLimitMiddleware(stream, counter=counter), http_scope(path="/events")
    )
    assert counter.keys == ["192.0.2.1"]
    assert exchange.content == b"".join(b"%d\n" % n for n in range(50))
    [start] = [m for m in exchange.sent if m["type"] == "http.response.start"]
    assert [name for name, _ in start["headers"]] == [b"ratelimit-policy", b"ratelimit"]


async def test_a_429_carries_cors_headers_when_cors_is_outside(clock: FakeClock) -> None:
    cors = Middleware(
        CORSMiddleware,
        allow_origins=[UI],
        expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy"],
    )
    async with client(tiny_app(Counter(clock, limit=1), None, cors)) as c:
        await c.get("/tasks")
        refused = await c.get("/tasks", headers={"origin": UI})
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == UI
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "ratelimit" in exposed


async def test_other_scopes_pass_straight_through(clock: FakeClock) -> None:
    counter = Counter(clock)
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await RateLimitMiddleware(app, counter=counter)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"] and counter.keys == []


# A request the app counts itself (``counts_itself``): its count goes with the app's own call.


class Store:
    """The app's store, which counts a request handed to it in the same call as its work."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.calls = 0

    async def read(self, pending: Pending | None) -> str:
        self.calls += 1
        if pending is not None:
            allowed, remaining, reset_s = await self.counter.window.hit(pending.key)
            pending.decide(allowed, remaining, reset_s)
            if not allowed:
                raise OverLimit()
        return "read"


class OverLimit(Exception):
    """What the store raises for a refused count; the app answers it with anything."""


def counting_app(counter: Counter, store: Store, refused: list[None] | None = None) -> Starlette:
    async def read(request: Request) -> Response:
        if request.query_params.get("invalid"):  # answered before the store is asked
            return PlainTextResponse("invalid", status_code=400)
        return PlainTextResponse(await store.read(request.scope.get(PENDING)))

    def over_limit(exc: Exception) -> Problem | None:
        return Problem(429, "the store said no") if isinstance(exc, OverLimit) else None

    return Starlette(
        routes=[Route("/{path:path}", read)],
        middleware=[
            Middleware(
                RateLimitMiddleware,
                counter=counter,
                counts_itself=lambda scope: scope["path"] == "/counted-by-the-app",
                on_refused=None if refused is None else lambda: refused.append(None),
            ),
            Middleware(ErrorMiddleware, classify=over_limit),
        ],
    )


async def test_a_request_the_app_counts_is_counted_once_with_the_apps_call(
    clock: FakeClock,
) -> None:
    counter = Counter(clock, limit=2)
    store = Store(counter)
    async with client(counting_app(counter, store)) as c:
        first = await c.get("/counted-by-the-app")
        second = await c.get("/counted-by-the-app")
        other = await c.get("/elsewhere")  # counted by the layer, in the same window
    assert [first.text, second.text] == ["read", "read"]
    assert first.headers["ratelimit"] == '"per-ip";r=1;t=60'
    assert second.headers["ratelimit"] == '"per-ip";r=0;t=60'
    assert counter.keys == ["192.0.2.1"]  # the layer's own count: only the other path's
    assert other.status_code == 429
    assert store.calls == 2


async def test_a_refusal_decided_with_the_apps_call_is_the_layers_429(clock: FakeClock) -> None:
    counter = Counter(clock, limit=1)
    store = Store(counter)
    refused: list[None] = []
    async with client(counting_app(counter, store, refused)) as c:
        await c.get("/counted-by-the-app")
        response = await c.get("/counted-by-the-app")
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "60"
    assert response.headers["ratelimit"] == '"per-ip";r=0;t=60'
    problem = response.json()
    assert problem["type"] == QUOTA_EXCEEDED
    assert problem["detail"] == "too many requests from this address; retry in 60 s"
    assert len(refused) == 1
    assert counter.keys == []  # counted by the store both times


async def test_a_request_the_app_answered_without_counting_is_counted_by_the_layer(
    clock: FakeClock,
) -> None:
    counter = Counter(clock, limit=1)
    store = Store(counter)
    refused: list[None] = []
    async with client(counting_app(counter, store, refused)) as c:
        first = await c.get("/counted-by-the-app?invalid=1")
        second = await c.get("/counted-by-the-app?invalid=1")
    assert (first.status_code, first.text) == (400, "invalid")
    assert first.headers["ratelimit"] == '"per-ip";r=0;t=60'
    # Over the limit, the app's answer is replaced by the refusal, its body dropped.
    assert second.status_code == 429
    assert "invalid" not in second.text
    assert second.json()["type"] == QUOTA_EXCEEDED
    assert counter.keys == ["192.0.2.1", "192.0.2.1"]
    assert (store.calls, len(refused)) == (0, 1)


class FlakyCounter:
    """A counter whose store is away while ``away`` is set."""

    limit, window_s = 10, 60

    def __init__(self) -> None:
        self.away = True

    async def hit(self, key: str) -> tuple[bool, int, int]:
        if self.away:
            raise ConnectionError("the counter's store is unreachable")
        return True, 9, 60


async def test_an_outage_of_the_counter_is_logged_once_and_its_end_once() -> None:
    counter = FlakyCounter()
    with logged("taskwire.ratelimit") as logs:
        async with client(tiny_app(counter, Endpoint())) as c:
            assert [(await c.get("/tasks")).status_code for _ in range(3)] == [200] * 3
            counter.away = False
            assert [(await c.get("/tasks")).status_code for _ in range(2)] == [200] * 2
            counter.away = True
            assert (await c.get("/tasks")).status_code == 200
    assert logs.messages == [
        "the rate-limit counter failed; request let through",
        "the rate-limit counter works again; requests are counted",
        "the rate-limit counter failed; request let through",
    ]


async def test_when_the_counter_fails_after_the_app_answered_the_answer_goes_out() -> None:
    async def invalid(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("invalid", status_code=400)(scope, receive, send)

    app = RateLimitMiddleware(invalid, counter=BrokenCounter(), counts_itself=lambda scope: True)
    with logged("taskwire.ratelimit", logging.WARNING) as logs:
        exchange = await Exchange().run(app, http_scope())
    assert (exchange.status, exchange.content) == (400, b"invalid")
    assert "ratelimit" not in exchange.headers
    assert logs.messages == ["the rate-limit counter failed; request let through"]


async def test_a_counter_in_this_process_counts_every_request_itself(clock: FakeClock) -> None:
    # Asking it costs no round trip: nothing is left to the app.
    window = SlidingWindowCounter(limit=5, window_s=60, clock=clock)
    seen: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get(PENDING))
        await PlainTextResponse("ok")(scope, receive, send)

    layer = RateLimitMiddleware(app, counter=window, counts_itself=lambda scope: True)
    exchange = await Exchange().run(layer, http_scope())
    assert seen == [None]
    assert exchange.headers["ratelimit"] == '"per-ip";r=4;t=60'


# A counter elsewhere's refusal is remembered: no round trip until the window could free.


def remembering_app(counter: object, clock: FakeClock, endpoint: Endpoint) -> Starlette:
    return Starlette(
        routes=[Route("/{path:path}", endpoint.handle)],
        middleware=[Middleware(RateLimitMiddleware, counter=counter, clock=clock)],
    )


async def test_a_refusal_is_remembered_until_just_before_the_window_could_free(
    clock: FakeClock,
) -> None:
    counter = Counter(clock, limit=1, window_s=10)
    endpoint = Endpoint()
    async with client(remembering_app(counter, clock, endpoint)) as c:
        assert (await c.get("/tasks")).status_code == 200
        clock.advance(2)
        refused = await c.get("/tasks")  # the counter says: 8 s until a place frees
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "8")
        asked = len(counter.keys)
        clock.advance(6.9)
        again = await c.get("/tasks")  # answered here: the counter is not asked
        assert len(counter.keys) == asked
        assert (again.status_code, again.headers["retry-after"]) == (429, "2")
        assert again.headers["ratelimit"] == '"per-ip";r=0;t=2'
        assert again.json()["type"] == QUOTA_EXCEEDED
        clock.advance(0.1)  # past the remembered time (7 s less a margin): asked again
        assert (await c.get("/tasks")).status_code == 429
        assert len(counter.keys) == asked + 1
        clock.advance(1.1)  # the first request has left the window
        assert (await c.get("/tasks")).status_code == 200
    assert endpoint.reached == 2


async def test_a_short_refusal_or_a_counter_in_this_process_is_not_remembered(
    clock: FakeClock,
) -> None:
    counter = Counter(clock, limit=1, window_s=1)  # a refusal says 1 s: nothing to save
    async with client(remembering_app(counter, clock, Endpoint())) as c:
        for _ in range(3):
            await c.get("/tasks")
    assert len(counter.keys) == 3
    window = SlidingWindowCounter(limit=1, window_s=60, clock=clock)
    layer = RateLimitMiddleware(Endpoint().handle, counter=window, clock=clock)
    assert layer._hit_now is not None
    layer._remember("192.0.2.1", 60)
    assert layer._refused == {}


async def test_at_most_so_many_refusals_are_remembered(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("middleware.ratelimit.REMEMBERED_MOST", 3)
    layer = RateLimitMiddleware(Endpoint().handle, counter=Counter(clock), clock=clock)
    for n in range(3):
        layer._remember(f"key-{n}", 30)
    clock.advance(40)  # all three over: cleared to make room
    layer._remember("key-3", 30)
    assert set(layer._refused) == {"key-3"}
    for n in range(4, 7):  # none over: all forgotten rather than grow
        layer._remember(f"key-{n}", 30)
    assert len(layer._refused) <= 3


async def test_a_refusal_decided_with_the_apps_call_is_remembered_too(clock: FakeClock) -> None:
    counter = Counter(clock, limit=1)
    store = Store(counter)

    async def read(request: Request) -> Response:
        return PlainTextResponse(await store.read(request.scope.get(PENDING)))

    def over_limit(exc: Exception) -> Problem | None:
        return Problem(429, "the store said no") if isinstance(exc, OverLimit) else None

    app = Starlette(
        routes=[Route("/{path:path}", read)],
        middleware=[
            Middleware(
                RateLimitMiddleware, counter=counter, counts_itself=lambda s: True, clock=clock
            ),
            Middleware(ErrorMiddleware, classify=over_limit),
        ],
    )
    async with client(app) as c:
        assert (await c.get("/x")).status_code == 200
        assert (await c.get("/x")).status_code == 429  # the store refused: 60 s
        assert (await c.get("/x")).status_code == 429  # remembered: the store is not asked
    assert store.calls == 2
