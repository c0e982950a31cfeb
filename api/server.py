"""Uvicorn as Taskwire runs it: deadlines for each request's head and body, and no WebSocket.

Uvicorn sets no deadline on a request's arrival: a connection that sends nothing, or a byte
now and then (slowloris, or a body trickled in), holds a socket for ever, and enough of them
shut every other client out. ``HeadTimeoutProtocol`` closes a connection whose request head
has not arrived within ``HEAD_TIMEOUT_S``, or whose body comes slower than
``BODY_TIMEOUT_S`` and ``BODY_MIN_RATE`` allow. ``make run``, ``taskwire serve`` and
``gunicorn.conf.py`` (through ``TaskwireWorker``) run uvicorn with it, with ``--ws none``
(an ``Upgrade: websocket`` request is then plain HTTP, answered by
``middleware/websocket.py``) and with a cap on connections (``TASKWIRE_MAX_CONNECTIONS``:
uvicorn answers 503 above it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections import Counter
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from middleware.accesslog import AccessLogMiddleware
from middleware.headers import NOSNIFF
from middleware.problem import PROBLEM_JSON, Problem
from middleware.requestid import choose_request_id
from service.settings import load_settings

logger = logging.getLogger("taskwire")

HEAD_TIMEOUT_S = 10.0
"""Longest a connection may take to send a request's line and headers."""
BODY_TIMEOUT_S = 20.0
BODY_MIN_RATE = 500
"""A request's body must arrive within ``BODY_TIMEOUT_S`` of its head, plus a second for every
``BODY_MIN_RATE`` bytes received (Apache's ``mod_reqtimeout`` defaults): a body as large as
``TASKWIRE_MAX_BODY`` allows gets there on the slowest link, and a trickle ends. While the
server itself stops reading (an answer not yet taking the body), the clock starts again."""


MAX_HEAD_BYTES = 64 * 1024
"""Largest request line and headers, together; more is a 431 (httptools sets no limit). The
bytes received while a head is incomplete are counted, a read at a time (a read is at most
256 KiB), at no cost per header."""
REFUSED_LINGER_S = 1.0
"""How long a connection refused at once is kept half-open, so its refusal is read."""
MAX_PIPELINED = 16
"""Requests one connection may have waiting behind the one being answered; a client that
sends more before reading is cut off (uvicorn would parse and queue them all)."""


def _refusal(status: HTTPStatus, detail: str, extra: bytes = b"") -> bytes:
    """An answer written straight to the socket, where there is no request to route (a head
    too late, too large or not HTTP): problem JSON with a request id, as every answer, and
    the connection closed after it."""
    rid = choose_request_id(())
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": status.phrase,
            "status": status.value,
            "detail": detail,
            "request_id": rid.decode(),
        }
    )
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
        b"x-request-id: %s\r\nx-content-type-options: nosniff\r\n%sconnection: close\r\n\r\n"
    ) % (status.value, status.phrase.encode(), PROBLEM_JSON.encode(), len(body), rid, extra)
    return head + body


OVER_CAPACITY = AccessLogMiddleware(
    Problem(
        503,
        "this server holds as many connections as it takes (TASKWIRE_MAX_CONNECTIONS); "
        "try again shortly",
        headers={"Retry-After": "1"},
    ),
    headers=NOSNIFF,
)
"""Uvicorn's answer above its connection cap (plain text, no id), as Taskwire answers."""
# Uvicorn picks its 503 app from this module global when a connection is over the cap.
httptools_impl.service_unavailable = OVER_CAPACITY  # type: ignore[attr-defined,assignment]


class HeadTimeoutProtocol(HttpToolsProtocol):
    """Uvicorn's HTTP/1.1 protocol, closing a connection whose request head or body is late.

    The clock runs from the connection's start, and again from the first byte of each
    later request on it, until the request has arrived; between requests, uvicorn's
    keep-alive timeout applies. One timer serves head and body: it is set for the head, and
    when it fires during a body, it is set again for whatever the body has earned since.
    """

    head_timeout_s = HEAD_TIMEOUT_S
    body_timeout_s = BODY_TIMEOUT_S
    body_min_rate = BODY_MIN_RATE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arrival: asyncio.TimerHandle | None = None
        self._reading_head = False
        self._head_bytes = 0
        self._body_since = 0.0
        self._body_bytes = 0
        self._flooded = False
        self._address: str | None = None
        self._refused = False
        if not self._admit():
            return
        self._start_clock()

    def _admit(self) -> bool:
        """Count the connection against its address; refuse it (429) if that address holds
        half of TASKWIRE_MAX_CONNECTIONS already, so that no one client (slow heads reopened
        as their deadline closes them, say) can take every connection. A trusted proxy's
        connections carry many clients: they are not counted."""
        cap = self.limit_concurrency
        if cap is None or self.client is None or self.client[0] in _trusted(self.config):
            return True
        address, most = self.client[0], max(1, cap // 2)
        held = _held_by_address(self.server_state)
        if held[address] >= most:
            detail = f"this address holds {most} connections, the most one client may"
            self.transport.write(
                _refusal(HTTPStatus.TOO_MANY_REQUESTS, detail, b"retry-after: 1\r\n")
            )
            # Half-closed, what the client sends read and dropped for a moment: closed with a
            # request unread, the socket would be reset, and the answer lost with it.
            self._refused = True
            self.connections.discard(self)  # nor does it count against the server's cap
            self.transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_S, self.transport.close)
            return False
        held[address] += 1
        self._address = address
        return True

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:  # a head on its way: its bytes count
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > MAX_HEAD_BYTES:
            self._stop_clock()
            self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request's line and headers are over {MAX_HEAD_BYTES} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._arrival is None:  # a later request; the first's runs from the connect
            self._start_clock()

    def send_400_response(self, msg: str) -> None:
        if self._flooded:
            self.pipeline.clear()
            self.transport.abort()
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, "the request is not valid HTTP/1.1")

    def _refuse(self, status: HTTPStatus, detail: str) -> None:
        self.transport.write(_refusal(status, detail))
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0  # the next request's head counts from here
        self._body_since, self._body_bytes = self.loop.time(), 0  # the clock runs on
        super().on_headers_complete()
        if len(self.pipeline) > MAX_PIPELINED:  # requests sent ahead, never read: cut off
            self._flooded = True
            raise ValueError("too many pipelined requests")  # stops the parser

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_clock()  # the request has arrived
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        if self._address is not None:
            held = _held_by_address(self.server_state)
            held[self._address] -= 1
            if not held[self._address]:
                del held[self._address]
            self._address = None
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        self._stop_clock()
        self._reading_head = True
        self._arrival = self.loop.call_later(self.head_timeout_s, self._late)

    def _stop_clock(self) -> None:
        self._reading_head = False
        if self._arrival is not None:
            self._arrival.cancel()
            self._arrival = None

    def _late(self) -> None:
        self._arrival = None
        if self.transport.is_closing():
            return
        if self._reading_head:
            late = f"the request's line and headers did not arrive within {self.head_timeout_s:g} s"
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, late)
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the server is not reading: no fault of the client's
            self._body_since, self._body_bytes = now, 0
        due = self._body_since + self.body_timeout_s + self._body_bytes / self.body_min_rate
        if now < due:
            self._arrival = self.loop.call_at(due, self._late)
        elif self.cycle.response_started:  # answered without the body; the rest never came
            self.transport.close()
        else:
            late = (
                f"the request's body did not arrive in time: {self.body_timeout_s:g} s, and "
                f"a second more for every {self.body_min_rate} bytes received"
            )
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, late)


def _held_by_address(state: ServerState) -> Counter[str]:
    """Open connections by client address, for one server (kept on its state)."""
    held: Counter[str] | None = getattr(state, "taskwire_by_address", None)
    if held is None:
        held = Counter()
        state.taskwire_by_address = held  # type: ignore[attr-defined]
    return held


def _trusted(config: Config) -> _TrustedHosts:
    """The proxies FORWARDED_ALLOW_IPS names (uvicorn's parsing), once per config."""
    trusted: _TrustedHosts | None = getattr(config, "taskwire_trusted", None)
    if trusted is None:
        trusted = _TrustedHosts(config.forwarded_allow_ips or [])
        config.taskwire_trusted = trusted  # type: ignore[attr-defined]
    return trusted


GC_THRESHOLD = (10_000, 10, 10)
"""Young collections every 10 000 net allocations instead of 700: a request allocates a few
hundred objects, so with Python's default a collection ran every few requests, promoting
objects of requests in flight to older generations for a full collection to find later."""


def tune_gc() -> None:
    """Set the garbage collector up for a long-running server, once the app is built.

    The ~60 000 objects of the imported code and the app never become garbage; frozen, no
    full collection walks them again (each such walk took ~30 ms, a pause every request in
    flight waited out). Tasks and events are freed by reference counting as before, and
    cycles among them are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def uvicorn_options(max_connections: int) -> dict[str, Any]:
    """What Taskwire asks of uvicorn, however it is started."""
    return {"http": HeadTimeoutProtocol, "ws": "none", "limit_concurrency": max_connections}


class TaskwireWorker(UvicornWorker):  # type: ignore[misc]  # (untyped)
    """Gunicorn's uvicorn worker with ``uvicorn_options`` (``gunicorn.conf.py`` uses it).

    It also stops when its master is gone: gunicorn's own workers do, but the uvicorn worker
    would go on serving, unsupervised, after a ``kill -9`` of the master (or the OOM killer's).
    """

    NOTIFY_S = 1.0
    """How often the worker tells the master it is alive, and checks the master is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = load_settings()
        self.CONFIG_KWARGS = {
            **UvicornWorker.CONFIG_KWARGS,
            **uvicorn_options(settings.max_connections),
            "timeout_notify": self.NOTIFY_S,
        }
        super().__init__(*args, **kwargs)

    async def callback_notify(self) -> None:
        if os.getppid() != self.ppid:
            logger.warning("the gunicorn master (pid %d) is gone; shutting down", self.ppid)
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown
            return
        self.notify()
