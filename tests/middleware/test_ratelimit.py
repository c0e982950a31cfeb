from __future__ import annotations

import random
import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from middleware.ratelimit import QUOTA_EXCEEDED, RateLimitMiddleware, SlidingWindowLimiter
from tests.support import FakeClock, client_for

RATELIMIT = re.compile(r'^"per-ip";r=(\d+);t=(\d+)$')


def limiter(clock: FakeClock, limit: int = 10, window_s: int = 60) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(limit=limit, window_s=window_s, clock=clock)


async def test_the_10th_request_passes_and_the_11th_is_refused(clock: FakeClock) -> None:
    window = limiter(clock)
    decisions = []
    for _ in range(11):
        decisions.append(await window.hit("a"))
        clock.advance(1)
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert decisions[-1].reset_s == 50  # the first request (at 0 s) leaves the window at 60 s


async def test_the_window_slides(clock: FakeClock) -> None:
    window = limiter(clock, limit=2, window_s=60)
    assert (await window.hit("a")).allowed  # t=0
    clock.advance(30)
    assert (await window.hit("a")).allowed  # t=30
    clock.advance(29.5)
    refused = await window.hit("a")
    assert not refused.allowed and refused.reset_s == 1  # t=59.5: a slot frees at 60
    clock.advance(0.5)
    assert (await window.hit("a")).allowed  # t=60: the first has left
    assert not (await window.hit("a")).allowed
    clock.advance(30)
    assert (await window.hit("a")).allowed  # t=90: the second has left


async def test_refused_requests_do_not_extend_the_wait(clock: FakeClock) -> None:
    window = limiter(clock, limit=1)
    await window.hit("a")
    for _ in range(100):
        clock.advance(0.5)
        await window.hit("a")
    clock.advance(10)
    assert (await window.hit("a")).allowed


async def test_requests_close_together_share_an_entry_so_memory_is_bounded_by_the_window(
    clock: FakeClock,
) -> None:
    window = limiter(clock, limit=10**9, window_s=60)
    for _ in range(60_000):  # 1000 per second for a minute
        assert (await window.hit("a")).allowed
        clock.advance(0.001)
    requests = window._log["a"]
    assert requests.count == 60_000
    assert len(requests.entries) <= 1001  # one per 60 ms, not one per request


async def test_a_shared_entry_leaves_the_window_with_its_latest_request(clock: FakeClock) -> None:
    window = limiter(clock, limit=2, window_s=60)  # entries group requests within 60 ms
    await window.hit("a")  # t=0
    clock.advance(0.05)
    await window.hit("a")  # t=0.05, same entry
    clock.advance(59.95)
    refused = await window.hit("a")  # t=60: an exact log would free one slot now
    assert not refused.allowed and refused.reset_s == 1  # never sooner, only a little later
    clock.advance(0.05)
    assert (await window.hit("a")).allowed  # t=60.05: both have left


async def test_no_window_ever_holds_more_than_the_limit(clock: FakeClock) -> None:
    rng = random.Random(5)
    window = limiter(clock, limit=20, window_s=10)  # entries group requests within 10 ms
    allowed: list[float] = []
    for _ in range(20_000):
        clock.advance(rng.choice([0.0, 0.001, 0.004, 0.009, 0.02, 0.3, 1.5]))
        if (await window.hit("a")).allowed:
            allowed.append(clock.now)
    oldest = 0
    for newest, at in enumerate(allowed):  # every window that ends at an allowed request
        while allowed[oldest] <= at - 10:
            oldest += 1
        assert newest - oldest + 1 <= 20
    assert len(allowed) > 5000  # and the limit was not simply refusing everything


async def test_addresses_are_counted_apart(clock: FakeClock) -> None:
    window = limiter(clock, limit=1)
    assert (await window.hit("a")).allowed
    assert (await window.hit("b")).allowed
    assert not (await window.hit("a")).allowed


async def test_sweep_forgets_addresses_quiet_for_a_window(clock: FakeClock) -> None:
    window = limiter(clock, window_s=60)
    for n in range(1000):
        await window.hit(f"10.0.{n // 256}.{n % 256}")
    clock.advance(30)
    await window.hit("active")
    assert window.sweep() == 0
    clock.advance(30)
    assert window.sweep() == 1000
    assert len(window) == 1


def counted_app(window: SlidingWindowLimiter) -> RateLimitMiddleware:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    return RateLimitMiddleware(
        ok, limiter=window, exempt_paths={"/healthz"}, exempt_prefixes=("/assets/",)
    )


async def test_counted_answers_carry_the_ietf_fields(clock: FakeClock) -> None:
    transport = httpx.ASGITransport(app=counted_app(limiter(clock)))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        first = await client.get("/tasks")
        clock.advance(12)
        second = await client.get("/tasks")
    assert first.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'
    assert first.headers["ratelimit"] == '"per-ip";r=9;t=60'
    assert second.headers["ratelimit"] == '"per-ip";r=8;t=48'


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        pytest.param("GET", "/healthz", {}, id="exempt-path"),
        pytest.param("GET", "/assets/app.js", {}, id="exempt-prefix"),
        pytest.param(
            "OPTIONS",
            "/tasks",
            {"origin": "http://ui.example", "access-control-request-method": "POST"},
            id="cors-preflight",
        ),
    ],
)
async def test_exempt_requests_are_not_counted(
    clock: FakeClock, method: str, path: str, headers: dict[str, str]
) -> None:
    window = limiter(clock, limit=1)
    transport = httpx.ASGITransport(app=counted_app(window))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        for _ in range(5):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 200 and "ratelimit" not in response.headers
        assert (await client.get("/tasks")).status_code == 200
    assert not (await window.hit("127.0.0.1")).allowed


async def test_an_options_request_without_cors_headers_is_counted(clock: FakeClock) -> None:
    window = limiter(clock, limit=1)
    transport = httpx.ASGITransport(app=counted_app(window))
    async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
        await client.options("/tasks")
    assert not (await window.hit("127.0.0.1")).allowed


async def test_through_the_app_the_11th_request_is_a_429_problem_with_retry_after(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(rate_limit=10)
    async with client_for(app, address="198.51.100.4") as client:
        answers = []
        for _ in range(11):
            answers.append(await client.get("/tasks"))
            clock.advance(1)
        for exempt in ("/healthz", "/metrics", "/task-types", "/openapi.json", "/docs"):
            assert (await client.get(exempt)).status_code == 200
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == QUOTA_EXCEEDED
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["retry-after"] == "50"
    assert refused.headers["ratelimit"] == '"per-ip";r=0;t=50'
    assert refused.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'


async def test_error_answers_are_counted_and_carry_the_fields(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(rate_limit=10)
    async with client_for(app) as client:
        not_found = await client.get("/tasks/0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11")
        bad = await client.get("/tasks?limit=0")
    assert not_found.status_code == 404 and not_found.headers["ratelimit"] == '"per-ip";r=9;t=60'
    assert bad.status_code == 400 and bad.headers["ratelimit"] == '"per-ip";r=8;t=60'


async def test_a_429_still_carries_cors_headers(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(rate_limit=1, cors_origins=["http://ui.example"])
    async with client_for(app) as client:
        await client.get("/tasks")
        refused = await client.get("/tasks", headers={"origin": "http://ui.example"})
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == "http://ui.example"
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "ratelimit" in exposed


async def test_limiting_is_keyed_on_the_scope_client_not_forwarded_headers(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(rate_limit=1)
    async with client_for(app, address="192.0.2.1") as client:
        assert (
            await client.get("/tasks", headers={"x-forwarded-for": "10.0.0.1"})
        ).status_code == 200
        assert (
            await client.get("/tasks", headers={"x-forwarded-for": "10.0.0.2"})
        ).status_code == 429
