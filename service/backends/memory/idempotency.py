"""The memory backend's idempotency records: keys remembered for their TTL, bounded in number."""

from __future__ import annotations

from service.clock import Clock
from service.idempotency import Idempotency, IdempotencyRecord


class IdempotencyRecords:
    """Records by scoped key, each until it expires; at most ``capacity`` of them.

    Args:
        capacity: most records kept; past it, the one written longest ago is forgotten
            (its key then works as new).
        clock: seconds, for the TTLs.
    """

    def __init__(self, capacity: int, clock: Clock) -> None:
        self._capacity = capacity
        self._clock = clock
        self._records: dict[str, tuple[IdempotencyRecord, float]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def begin(self, scope: str, in_flight_ttl_s: float) -> IdempotencyRecord | None:
        """The key's record, or None after marking the key in flight (it was unused)."""
        if (found := self._live(scope)) is not None:
            return found
        self._write(scope, IdempotencyRecord(in_flight=True), in_flight_ttl_s)
        return None

    def complete(self, idempotency: Idempotency, task_id: str) -> None:
        record = IdempotencyRecord(False, idempotency.fingerprint, task_id)
        self._write(idempotency.scope, record, idempotency.ttl_s)

    def abandon(self, scope: str) -> None:
        """Forget a key still in flight (its request was refused: the client may retry)."""
        found = self._live(scope)
        if found is not None and found.in_flight:
            del self._records[scope]

    def _live(self, scope: str) -> IdempotencyRecord | None:
        entry = self._records.get(scope)
        if entry is None:
            return None
        record, expires_at = entry
        if expires_at <= self._clock():
            del self._records[scope]
            return None
        return record

    def _write(self, scope: str, record: IdempotencyRecord, ttl_s: float) -> None:
        self._records.pop(scope, None)  # a rewritten record counts as the newest
        self._records[scope] = (record, self._clock() + ttl_s)
        while len(self._records) > self._capacity:
            del self._records[next(iter(self._records))]
