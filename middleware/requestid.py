"""Request ids: every answer carries ``X-Request-ID``, and so does every log line of its request.

The id is given by ``AccessLogMiddleware`` (``middleware/accesslog.py``), which wraps every
request's answer anyway: one layer, one ``send`` wrapper, for the id, the log line and the timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from random import getrandbits

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

request_id: ContextVar[str] = ContextVar("request_id", default="-")
"""The id of the request being served; ``-`` outside a request (workers, timers)."""


def choose_request_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The client's ``X-Request-ID`` if it is short and plain, else a new one."""
    given = next((value for name, value in headers if name == HEADER), None)
    if given is not None and _SANE.fullmatch(given):
        return given
    # 32 random hex digits, like uuid4().hex: an id must be unique, not secret, so no
    # syscall for entropy and no UUID object on every request.
    return b"%032x" % getrandbits(128)
