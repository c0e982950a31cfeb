"""Idempotent submissions: a key the client sends makes a retried submit create nothing new.

The key is scoped (to the client address, or later its API key) and remembered for a TTL with
a fingerprint of the request's parsed body and the task it created. A backend records it in the
same atomic step as the task (``Backend.submit``), after marking it in flight when the request
arrives (``Backend.begin_idempotent``), so two requests with one key, in any processes, create
one task.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from service.tasktypes import Submission

IN_FLIGHT_TTL_S = 60.0
"""How long a key stays marked in flight if its request never ends (a crashed process)."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    """What a submit records with its task: the scoped key, the body's fingerprint, the TTL."""

    scope: str
    fingerprint: str
    ttl_s: float


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a key's earlier request left: in flight still, or its fingerprint and task."""

    in_flight: bool
    fingerprint: str = ""
    task_id: str = ""


def fingerprint(submission: Submission) -> str:
    """A digest of the parsed submission: key order, spacing and spelled-out defaults (and
    ``1`` against ``1.0`` where a number is expected) make no difference."""
    canonical = orjson.dumps(submission.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
