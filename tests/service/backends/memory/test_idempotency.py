"""The memory backend's idempotency records: TTLs on the injected clock, a bound on how many."""

from __future__ import annotations

from service.backends.memory.idempotency import IdempotencyRecords
from service.idempotency import Idempotency, IdempotencyRecord
from tests.support import FakeClock


def test_an_in_flight_mark_and_a_record_each_last_their_own_ttl() -> None:
    clock = FakeClock()
    records = IdempotencyRecords(10, clock)
    assert records.begin("a/k", in_flight_ttl_s=60) is None
    clock.advance(59)
    assert records.begin("a/k", in_flight_ttl_s=60) == IdempotencyRecord(True)
    clock.advance(1)  # the mark is gone: a crashed request does not hold the key for ever
    assert records.begin("a/k", in_flight_ttl_s=60) is None
    records.complete(Idempotency("a/k", "d", ttl_s=600), "t1")
    clock.advance(599)
    assert records.begin("a/k", 60) == IdempotencyRecord(False, "d", "t1")
    clock.advance(1)
    assert records.begin("a/k", 60) is None


def test_past_the_capacity_the_record_written_longest_ago_is_forgotten() -> None:
    records = IdempotencyRecords(3, FakeClock())
    for n in range(3):
        records.complete(Idempotency(f"a/{n}", "d", 600), f"t{n}")
    records.complete(Idempotency("a/0", "d", 600), "t0")  # rewritten: now the newest
    records.complete(Idempotency("a/3", "d", 600), "t3")
    assert len(records) == 3
    assert records.begin("a/1", 60) is None  # forgotten
    assert records.begin("a/0", 60) == IdempotencyRecord(False, "d", "t0")


def test_abandon_frees_only_a_key_in_flight() -> None:
    records = IdempotencyRecords(10, FakeClock())
    records.abandon("a/unknown")  # nothing to do
    assert records.begin("a/k", 60) is None
    records.abandon("a/k")
    assert len(records) == 0
