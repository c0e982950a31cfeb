"""The memory backend's rate-limit counter: a sliding window of request times per key.
(What the middleware does with its answers is tested in tests/middleware/test_ratelimit.py.)"""

from __future__ import annotations

import random

from service.backends.memory.ratelimit import SlidingWindowCounter
from tests.support import FakeClock


def counter(clock: FakeClock, limit: int = 10, window_s: int = 60) -> SlidingWindowCounter:
    return SlidingWindowCounter(limit=limit, window_s=window_s, clock=clock)


async def allowed(window: SlidingWindowCounter, key: str = "a") -> bool:
    return (await window.hit(key))[0]


async def test_the_10th_request_passes_and_the_11th_is_refused(clock: FakeClock) -> None:
    window = counter(clock)
    decisions = []
    for _ in range(11):
        decisions.append(await window.hit("a"))
        clock.advance(1)
    assert [allowed for allowed, _, _ in decisions] == [True] * 10 + [False]
    assert [remaining for _, remaining, _ in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert decisions[0] == (True, 9, 60)
    assert decisions[-1] == (False, 0, 50)  # the first request (at 0 s) leaves at 60 s


async def test_the_window_slides(clock: FakeClock) -> None:
    window = counter(clock, limit=2, window_s=60)
    assert await allowed(window)  # t=0
    clock.advance(30)
    assert await allowed(window)  # t=30
    clock.advance(29.5)
    assert await window.hit("a") == (False, 0, 1)  # t=59.5: a slot frees at 60
    clock.advance(0.5)
    assert await allowed(window)  # t=60: the first has left
    assert not await allowed(window)
    clock.advance(30)
    assert await allowed(window)  # t=90: the second has left


async def test_refused_requests_do_not_extend_the_wait(clock: FakeClock) -> None:
    window = counter(clock, limit=1)
    await window.hit("a")
    for _ in range(100):
        clock.advance(0.5)
        await window.hit("a")
    clock.advance(10)
    assert await allowed(window)


async def test_requests_close_together_share_an_entry_so_memory_is_bounded_by_the_window(
    clock: FakeClock,
) -> None:
    window = counter(clock, limit=10**9, window_s=60)
    for _ in range(60_000):  # 1000 per second for a minute
        assert await allowed(window)
        clock.advance(0.001)
    requests = window._log["a"]
    assert requests.count == 60_000
    assert len(requests.entries) <= 1001  # one per 60 ms, not one per request


async def test_a_shared_entry_leaves_the_window_with_its_latest_request(clock: FakeClock) -> None:
    window = counter(clock, limit=2, window_s=60)  # entries group requests within 60 ms
    await window.hit("a")  # t=0
    clock.advance(0.05)
    await window.hit("a")  # t=0.05, same entry
    clock.advance(59.95)
    refused = await window.hit("a")  # t=60: an exact log would free one slot now
    assert refused == (False, 0, 1)  # never sooner, only a little later
    clock.advance(0.05)
    assert await allowed(window)  # t=60.05: both have left


async def test_no_window_ever_holds_more_than_the_limit(clock: FakeClock) -> None:
    rng = random.Random(5)
    window = counter(clock, limit=20, window_s=10)  # entries group requests within 10 ms
    passed: list[float] = []
    for _ in range(20_000):
        clock.advance(rng.choice([0.0, 0.001, 0.004, 0.009, 0.02, 0.3, 1.5]))
        if await allowed(window):
            passed.append(clock.now)
    oldest = 0
    for newest, at in enumerate(passed):  # every window that ends at an allowed request
        while passed[oldest] <= at - 10:
            oldest += 1
        assert newest - oldest + 1 <= 20
    assert len(passed) > 5000  # and the limit was not simply refusing everything


async def test_keys_are_counted_apart(clock: FakeClock) -> None:
    window = counter(clock, limit=1)
    assert await allowed(window, "a")
    assert await allowed(window, "b")
    assert not await allowed(window, "a")


async def test_sweep_forgets_keys_quiet_for_a_window(clock: FakeClock) -> None:
    window = counter(clock, window_s=60)
    for n in range(1000):
        await window.hit(f"10.0.{n // 256}.{n % 256}")
    clock.advance(30)
    await window.hit("active")
    assert window.sweep() == 0
    clock.advance(30)
    assert window.sweep() == 1000
    assert len(window) == 1


async def test_hits_sweep_lazily_once_per_window(clock: FakeClock) -> None:
    window = counter(clock, window_s=60)  # made at t=0: its first sweep is due at t=60
    for n in range(1000):
        await window.hit(f"quiet{n}")  # t=0
    clock.advance(59)
    await window.hit("recent")  # t=59: not due yet, so nothing is forgotten
    assert len(window) == 1001
    clock.advance(1)
    assert await window.hit("new") == (True, 9, 60)  # t=60: due; the quiet keys go first
    assert len(window) == 2  # "recent" and "new"
    clock.advance(59.5)
    await window.hit("later")  # t=119.5: "recent" has been quiet a window, but no sweep is due
    assert len(window) == 3
    clock.advance(0.5)
    await window.hit("last")  # t=120: the next sweep, a window after the last one
    assert sorted(window._log) == ["last", "later"]


async def test_a_key_forgotten_by_a_sweep_starts_again_with_its_whole_quota(
    clock: FakeClock,
) -> None:
    window = counter(clock, limit=2, window_s=60)
    assert [await allowed(window) for _ in range(3)] == [True, True, False]
    clock.advance(60)
    assert window.sweep() == 1
    assert await window.hit("a") == (True, 1, 60)
