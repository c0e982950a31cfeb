"""When a request may be sent again, and how long to wait first.

A request is retried only when sending it twice cannot do twice what it asks:

- ``Safety.IDEMPOTENT``: reads (``GET``) and ``DELETE`` (cancelling twice leaves the task
  cancelled). Retried after a 429, a 503 or any transport error, even one that may have
  happened after the request reached the service.
- ``Safety.SUBMIT``: ``POST /tasks`` with its ``Idempotency-Key``: a repeat answers the task the
  first one created and creates nothing, so it is retried like a read; and a 409 on a repeat
  (the first request is still being handled) is waited out too.
- ``Safety.UNSENT``: ``POST /tasks/{id}/retry``, which is not idempotent: retried only when the
  service surely did nothing: a 429 or 503 (a refusal), or a connection that never opened.

Streams reconnect (see ``Reconnects``): a stream the service ends, or that drops, is opened
again after the ``retry:`` the service asked for (SSE) or a backoff; a stream gives up after
``retries`` connections in a row that did not work.

The wait is the answer's ``Retry-After`` if it has one, else an exponential backoff
(``backoff_s``, doubling, at most ``max_backoff_s``). One call makes at most ``1 + retries``
requests and waits ``max_wait_s`` in all: a ``Retry-After`` longer than what is left of that
is not waited out; the error is raised at once, carrying ``retry_after_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import httpx

from taskwire.errors import retry_after_s


class Safety(Enum):
    IDEMPOTENT = "idempotent"
    SUBMIT = "submit"
    UNSENT = "unsent"


RETRIED_STATUSES = frozenset({429, 503})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before a byte of the request left: safe to retry anything."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    """Requests sent again at most, per call."""
    max_wait_s: float = 30.0
    """Seconds of waiting one call may spend on its retries, in all."""
    backoff_s: float = 0.5
    """The first wait when the service says nothing (a dropped connection); it doubles."""
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.max_wait_s < 0 or self.backoff_s < 0:
            raise ValueError("retries, max_wait_s and backoff_s must be at least 0")

    def start(self, safety: Safety) -> Attempts:
        """The retry budget of one call."""
        return Attempts(self, safety)


class Attempts:
    """One call's requests so far, and whether (and after how long) to send another."""

    def __init__(self, policy: RetryPolicy, safety: Safety) -> None:
        self.policy = policy
        self.safety = safety
        self.made = 0
        """Requests sent so far."""
        self.waited_s = 0.0

    def after_error(self, error: httpx.TransportError) -> float | None:
        """Seconds to wait before sending again after ``error``; None: give up."""
        if self.safety is Safety.UNSENT and not isinstance(error, NEVER_SENT):
            return None  # it may have reached the service: sending it again could do it twice
        return self._wait(None)

    def after_answer(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again after this error answer; None: give up."""
        status = response.status_code
        in_flight = self.safety is Safety.SUBMIT and status == 409 and self.made > 1
        if status not in RETRIED_STATUSES and not in_flight:
            return None
        return self._wait(retry_after_s(response))

    def _wait(self, asked_s: float | None) -> float | None:
        if self.made > self.policy.retries:
            return None
        if asked_s is None:
            retry = max(self.made - 1, 0)
            asked_s = min(self.policy.backoff_s * 2**retry, self.policy.max_backoff_s)
        if self.waited_s + asked_s > self.policy.max_wait_s:
            return None
        self.waited_s += asked_s
        return asked_s


HEALTHY_S = 5.0
"""A stream open this long worked, even if it delivered nothing (a quiet feed)."""


class Reconnects:
    """When a stream that ended is opened again, and when it gives up.

    A connection that delivered an item, or stayed open ``HEALTHY_S``, worked: the next one
    is tried after the service's ``retry:`` (or the policy's backoff). ``retries``
    connections in a row that did not work (a service that accepts and hangs up at once, as
    one that is shutting down does) and the stream gives up.
    """

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.failed = 0
        """Connections in a row that did not work."""
        self._clock = clock
        self._opened_at = clock()
        self._delivered = False

    def opened(self) -> None:
        self._opened_at = self._clock()
        self._delivered = False

    def delivered(self) -> None:
        self._delivered = True

    def wait_s(self, retry_s: float | None) -> float | None:
        """Seconds to wait before connecting again; None: give up."""
        worked = self._delivered or self._clock() - self._opened_at >= HEALTHY_S
        self.failed = 0 if worked else self.failed + 1
        if self.failed > self.policy.retries:
            return None
        return self.policy.backoff_s if retry_s is None else retry_s
