"""Taskwire's Python client: ``Client`` (blocking) and ``AsyncClient`` (asyncio), on httpx.

    from taskwire import Client

    with Client() as client:                      # TASKWIRE_URL, or http://127.0.0.1:8000
        task = client.submit("compute_sum", {"numbers": [1, 2, 3.5]}, wait=True)
        print(task.status, task.result)           # completed {'sum': 6.5}

Both clients have the same methods (the async ones are awaited, or iterated with
``async for``). Requests are retried as ``taskwire.retries`` explains: every ``submit``
carries an ``Idempotency-Key`` (a new UUID4 unless given), so it is retried after a 429, a 503
or a lost connection without ever creating a second task. Streams (``list``, ``watch``,
``events``, ``task_events``) are read as they arrive, never held whole in memory; the event
feeds reconnect by themselves with ``Last-Event-ID``.

This module talks HTTP only: it imports nothing of the service.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import re
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import EventSource

from taskwire._sse import FeedPosition
from taskwire.errors import Conflict, InvalidRequest, TransportError, problem_of
from taskwire.models import (
    TERMINAL_EVENTS,
    Identity,
    Resync,
    Snapshot,
    StreamItem,
    Synced,
    Task,
    TaskEvent,
    TaskStatus,
    TaskType,
    WatchItem,
)
from taskwire.retries import Reconnects, RetryPolicy, Safety

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "TASKWIRE_URL"
KEY_VARIABLE = "TASKWIRE_API_KEY"
NDJSON = "application/x-ndjson"
IDEMPOTENCY_KEY = "Idempotency-Key"
StatusFilter = str | TaskStatus | Iterable[str | TaskStatus] | None


def default_url() -> str:
    """``TASKWIRE_URL``, or ``http://127.0.0.1:8000``."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def _point(
    http: httpx.Client | httpx.AsyncClient, base_url: str | None, api_key: str | None
) -> str:
    """Point ``http`` at the service (``base_url``, else ``TASKWIRE_URL``...) with ``api_key``
    (else ``TASKWIRE_API_KEY``, if set) as a bearer token on every request, the event feeds
    included; returns the service's URL."""
    url = (base_url or default_url()).rstrip("/")
    http.base_url = httpx.URL(url)
    key = api_key if api_key is not None else os.environ.get(KEY_VARIABLE)
    if key:
        http.headers["Authorization"] = f"Bearer {key}"
    return url


def idempotency_header(key: str) -> str:
    """``key`` as the header's value: a Structured-Field string (RFC 8941), quoted and
    escaped. A key is 1–255 printable ASCII characters."""
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise ValueError("an Idempotency-Key is 1-255 printable ASCII characters")
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Requests:
    """What both clients share: settings, and how each call's request is made."""

    def __init__(
        self,
        build: Callable[..., httpx.Request],
        *,
        retries: int,
        max_wait_s: float,
        timeout_s: float,
        long_poll_s: float,
        stream_idle_s: float | None,
    ) -> None:
        self.policy = RetryPolicy(retries=retries, max_wait_s=max_wait_s)
        self.long_poll_s = long_poll_s
        self._connect_s = timeout_s
        self._feed_timeout = httpx.Timeout(timeout_s, read=stream_idle_s)
        self._watch_timeout = httpx.Timeout(timeout_s, read=None)  # a watch sends no heartbeat
        self._build = build

    def submit(
        self,
        task_type: str,
        parameters: Mapping[str, Any] | None,
        priority: str,
        idempotency_key: str | None,
    ) -> httpx.Request:
        body: dict[str, Any] = {"task_type": task_type, "priority": str(priority)}
        if parameters is not None:
            body["parameters"] = dict(parameters)
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        return self._build(
            "POST",
            "/tasks",
            content=json.dumps(body).encode(),  # the same bytes on every retry
            headers={"Content-Type": "application/json", IDEMPOTENCY_KEY: idempotency_header(key)},
        )

    def task(self, method: str, task_id: str, suffix: str = "") -> httpx.Request:
        return self._build(method, _task_path(task_id) + suffix)

    def long_poll(self, task_id: str, timeout_s: float) -> httpx.Request:
        return self._build(
            "GET",
            _task_path(task_id),
            params={"wait": "true", "timeout": f"{timeout_s:g}"},
            timeout=httpx.Timeout(self._connect_s, read=timeout_s + self._connect_s),
        )

    def learn_longest_poll(self, refusal: InvalidRequest, asked_s: float) -> None:
        """Take the service's longest long-poll from its refusal of ``asked_s`` (a service
        whose ``TASKWIRE_LONG_POLL_MAX`` is shorter than ``long_poll_s``), and ask for no more
        from now on; re-raise a refusal for any other reason."""
        for error in refusal.errors:
            if (error.location, error.field, error.type) == ("query", "timeout", "less_than_equal"):
                found = re.search(r"(\d+(?:\.\d+)?)$", error.detail)
                if found and 0 < float(found[1]) < asked_s:
                    self.long_poll_s = float(found[1])
                    return
        raise refusal

    def task_types(self) -> httpx.Request:
        return self._build("GET", "/task-types")

    def whoami(self) -> httpx.Request:
        return self._build("GET", "/whoami")

    def list(self, status: StatusFilter, task_type: str | None, limit: int | None) -> httpx.Request:
        params = _filters(status=status, task_type=task_type)
        if limit is not None:
            params["limit"] = str(limit)
        return self._build("GET", "/tasks", params=params, headers={"Accept": NDJSON})

    def watch(self, status: StatusFilter, task_type: str | None) -> httpx.Request:
        params = {**_filters(status=status, task_type=task_type), "watch": "true"}
        return self._build(
            "GET", "/tasks", params=params, headers={"Accept": NDJSON}, timeout=self._watch_timeout
        )

    def events(self, params: Mapping[str, str], position: FeedPosition) -> httpx.Request:
        return self._feed("/events", params, position)

    def task_events(self, task_id: str, position: FeedPosition) -> httpx.Request:
        return self._feed(_task_path(task_id) + "/events", {}, position)

    def _feed(self, path: str, params: Mapping[str, str], position: FeedPosition) -> httpx.Request:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store", **position.headers()}
        return self._build("GET", path, params=params, headers=headers, timeout=self._feed_timeout)


def _task_path(task_id: str) -> str:
    return "/tasks/" + quote(task_id, safe="")


def _filters(
    *, task_id: str | None = None, task_type: str | None = None, status: StatusFilter = None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if task_id is not None:
        params["task_id"] = task_id
    if task_type is not None:
        params["task_type"] = task_type
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        params["status"] = ",".join(str(s) for s in statuses)
    return params


def _task_of(response: httpx.Response) -> Task:
    return Task.from_json(response.json())


def _ndjson(line: str) -> Any:
    return json.loads(line) if line.strip() else None


def _watch_item(line: Mapping[str, Any]) -> WatchItem:
    kind = line.get("type")
    if kind == "snapshot":
        return Snapshot(Task.from_json(line["task"]))
    if kind == "synced":
        return Synced()
    return TaskEvent(int(line["id"]), str(kind), Task.from_json(line["task"]))


def _transport_error(request: httpx.Request, error: httpx.TransportError) -> TransportError:
    reason = str(error) or type(error).__name__
    return TransportError(f"{request.method} {request.url}: {reason}")


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def _no_retry(delay: float | None, deadline: float | None) -> bool:
    """Whether to give up rather than wait ``delay`` (None: the policy says so) and retry: a
    retry that would start after the caller's deadline is not made."""
    return delay is None or (deadline is not None and time.monotonic() + delay >= deadline)


def _poll_for(deadline: float | None, longest_s: float) -> float:
    """The next long-poll's timeout: what is left of the deadline, at most ``longest_s``;
    0 when the deadline has passed."""
    if deadline is None:
        return longest_s
    return max(0.0, min(deadline - time.monotonic(), longest_s))


class Client:
    """A blocking client.

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8000``; default ``TASKWIRE_URL``, or that.
        api_key: the API key, for a service that asks for one; default ``TASKWIRE_API_KEY``.
        retries: requests sent again at most, per call (see ``taskwire.retries``).
        max_wait_s: seconds one call may spend waiting between retries, in all; a
            ``Retry-After`` longer than what is left is not waited out, but raised at once.
        timeout_s: connect, read and write timeout of each request.
        long_poll_s: the longest long-poll ``wait()`` asks for; a service whose
            ``TASKWIRE_LONG_POLL_MAX`` is shorter (10 s unless set otherwise) refuses it, and
            its limit is asked for from then on.
        stream_idle_s: an event feed silent this long is taken as dead and reconnected (the
            service sends a heartbeat every 15 s); None waits forever.
        sleep: how to wait before a retry (tests pass their own).
        http: an ``httpx.Client`` to use (its ``base_url`` is replaced); closed with this one.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        retries: int = 3,
        max_wait_s: float = 30.0,
        timeout_s: float = 10.0,
        long_poll_s: float = 10.0,
        stream_idle_s: float | None = 60.0,
        sleep: Callable[[float], object] = time.sleep,
        http: httpx.Client | None = None,
        api_key: str | None = None,
    ) -> None:
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout_s))
        self.base_url = _point(self._http, base_url, api_key)
        self._requests = _Requests(
            self._http.build_request,
            retries=retries,
            max_wait_s=max_wait_s,
            timeout_s=timeout_s,
            long_poll_s=long_poll_s,
            stream_idle_s=stream_idle_s,
        )
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(
        self,
        task_type: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        priority: str = "normal",
        idempotency_key: str | None = None,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> Task:
        """Submit a task; with ``wait``, return it once finished (or at ``timeout_s``).

        The request carries ``idempotency_key`` (a new UUID4 unless given) and is retried
        after a 429, a 503 or a lost connection: however often it is sent, one task is created.
        """
        request = self._requests.submit(task_type, parameters, priority, idempotency_key)
        task = _task_of(self._send(request, Safety.SUBMIT))
        return self.wait(task.task_id, timeout_s=timeout_s) if wait else task

    def get(self, task_id: str) -> Task:
        return _task_of(self._send(self._requests.task("GET", task_id), Safety.IDEMPOTENT))

    def wait(self, task_id: str, *, timeout_s: float | None = None) -> Task:
        """The task once it has finished, long-polling until then; or, if ``timeout_s`` passes
        first, as it is then (check ``task.is_finished``)."""
        deadline = _deadline(timeout_s)
        task: Task | None = None
        while True:
            poll_s = _poll_for(deadline, self._requests.long_poll_s)
            if poll_s <= 0:
                return task if task is not None else self.get(task_id)
            request = self._requests.long_poll(task_id, poll_s)
            try:
                task = _task_of(self._send(request, Safety.IDEMPOTENT, deadline=deadline))
            except InvalidRequest as error:
                self._requests.learn_longest_poll(error, poll_s)
                continue
            if task.is_finished:
                return task

    def cancel(self, task_id: str) -> Task:
        """Cancel a queued or processing task; returns it, ``cancelled``. A finished task is a
        ``Conflict``, unless this call's own earlier, unanswered attempt cancelled it."""
        try:
            return _task_of(self._send(self._requests.task("DELETE", task_id), Safety.IDEMPOTENT))
        except Conflict as conflict:
            if conflict.attempts > 1 and (task := self.get(task_id)).status is TaskStatus.CANCELLED:
                return task
            raise

    def retry(self, task_id: str) -> Task:
        """Queue a failed or cancelled task again, as its next attempt. Not idempotent, so
        resent only when the service surely did nothing (a 429, a 503, no connection)."""
        request = self._requests.task("POST", task_id, "/retry")
        return _task_of(self._send(request, Safety.UNSENT))

    def task_types(self) -> builtins.list[TaskType]:
        response = self._send(self._requests.task_types(), Safety.IDEMPOTENT)
        return [TaskType.from_json(entry) for entry in response.json()]

    def whoami(self) -> Identity:
        """Whom the service takes this client for: its API key's name, and whether it is an
        admin's (``keys`` is False when the service asks for none)."""
        return Identity.from_json(self._send(self._requests.whoami(), Safety.IDEMPOTENT).json())

    def list(
        self,
        *,
        status: StatusFilter = None,
        task_type: str | None = None,
        limit: int | None = None,
    ) -> Generator[Task, None, None]:
        """The matching tasks, newest first, read one NDJSON line at a time as they arrive.

        ``status`` is one status or several. The request is sent when iteration starts."""
        request = self._requests.list(status, task_type, limit)
        response = self._send(request, Safety.IDEMPOTENT, stream=True)
        try:
            for line in response.iter_lines():
                if (data := _ndjson(line)) is not None:
                    yield Task.from_json(data)
        except httpx.TransportError as error:
            raise _transport_error(request, error) from error
        finally:
            response.close()

    def watch(
        self, *, status: StatusFilter = None, task_type: str | None = None
    ) -> Generator[WatchItem, None, None]:
        """The matching tasks (``Snapshot`` each), ``Synced``, then a ``TaskEvent`` for every
        later matching change, until the caller stops. If the service drops the watch, it is
        opened again: a ``Resync`` comes first, then a fresh snapshot."""
        reconnects = Reconnects(self._requests.policy)
        reopened = False
        while True:
            request = self._requests.watch(status, task_type)
            response = self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                if reopened:
                    yield Resync()
                for line in response.iter_lines():
                    if (data := _ndjson(line)) is not None:
                        reconnects.delivered()
                        yield _watch_item(data)
            except httpx.TransportError:
                pass  # dropped: opened again below
            finally:
                response.close()
            reopened = True
            self._pause(reconnects, None, request)

    def events(
        self,
        *,
        task_id: str | None = None,
        task_type: str | None = None,
        status: StatusFilter = None,
        last_event_id: int | str | None = None,
    ) -> Generator[StreamItem, None, None]:
        """Every matching event (``GET /events``), from now or after ``last_event_id``, until
        the caller stops.

        When the connection drops or the service ends the stream, it reconnects by itself
        after the ``retry:`` the service asked for, with ``Last-Event-ID``: nothing is missed
        and nothing comes twice. If the service cannot resume from there (the id is older than
        its history), a ``Resync`` comes instead: reload what you hold, then carry on."""
        params = _filters(task_id=task_id, task_type=task_type, status=status)
        position = FeedPosition(last_event_id)
        reconnects = Reconnects(self._requests.policy)
        while True:
            request = self._requests.events(params, position)
            response = self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                for sse in EventSource(response).iter_sse():
                    if (item := position.take(sse)) is not None:
                        reconnects.delivered()
                        yield item
            except httpx.TransportError:
                pass  # dropped: resumed below
            finally:
                response.close()
            self._pause(reconnects, position.retry_s, request)

    def task_events(
        self, task_id: str, *, last_event_id: int | str | None = None
    ) -> Generator[TaskEvent, None, None]:
        """One task's events (``GET /tasks/{id}/events``): its current state, then each
        change; ends after ``task.completed``, ``failed``, ``cancelled`` or ``expired``.
        Reconnects like ``events()``; a reconnect after the end (204) ends it too."""
        position = FeedPosition(last_event_id)
        reconnects = Reconnects(self._requests.policy)
        while True:
            request = self._requests.task_events(task_id, position)
            response = self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                if response.status_code == 204:
                    return
                for sse in EventSource(response).iter_sse():
                    if isinstance(item := position.take(sse), TaskEvent):
                        reconnects.delivered()
                        yield item
                    if sse.event in TERMINAL_EVENTS:  # (one seen before, too)
                        return
            except httpx.TransportError:
                pass
            finally:
                response.close()
            self._pause(reconnects, position.retry_s, request)

    def _send(
        self,
        request: httpx.Request,
        safety: Safety,
        *,
        stream: bool = False,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Send ``request``, again while ``safety`` and the budget allow, and (given a
        ``deadline``, a ``time.monotonic()``) only if the retry would start before it; the
        answer, if a success, else the error it stands for."""
        attempts = self._requests.policy.start(safety)
        while True:
            attempts.made += 1
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                if _no_retry(delay := attempts.after_error(error), deadline):
                    raise _transport_error(request, error) from error
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                if _no_retry(delay := attempts.after_answer(response), deadline):
                    raise problem_of(response, attempts=attempts.made)
            assert delay is not None
            self._sleep(delay)

    def _pause(self, reconnects: Reconnects, retry_s: float | None, request: httpx.Request) -> None:
        """Wait before reconnecting a stream, or give up (see ``Reconnects``)."""
        if (wait_s := reconnects.wait_s(retry_s)) is None:
            raise TransportError(f"{request.method} {request.url}: the stream keeps ending")
        self._sleep(wait_s)


class AsyncClient:
    """The asyncio client: ``Client``'s methods, awaited (streams: ``async for``).

    Close a stream you stop reading early with ``aclose()`` (or ``contextlib.aclosing``), so
    that its connection closes at once."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        retries: int = 3,
        max_wait_s: float = 30.0,
        timeout_s: float = 10.0,
        long_poll_s: float = 10.0,
        stream_idle_s: float | None = 60.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
        api_key: str | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))
        self.base_url = _point(self._http, base_url, api_key)
        self._requests = _Requests(
            self._http.build_request,
            retries=retries,
            max_wait_s=max_wait_s,
            timeout_s=timeout_s,
            long_poll_s=long_poll_s,
            stream_idle_s=stream_idle_s,
        )
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        task_type: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        priority: str = "normal",
        idempotency_key: str | None = None,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> Task:
        """See ``Client.submit``."""
        request = self._requests.submit(task_type, parameters, priority, idempotency_key)
        task = _task_of(await self._send(request, Safety.SUBMIT))
        return await self.wait(task.task_id, timeout_s=timeout_s) if wait else task

    async def get(self, task_id: str) -> Task:
        return _task_of(await self._send(self._requests.task("GET", task_id), Safety.IDEMPOTENT))

    async def wait(self, task_id: str, *, timeout_s: float | None = None) -> Task:
        """See ``Client.wait``."""
        deadline = _deadline(timeout_s)
        task: Task | None = None
        while True:
            poll_s = _poll_for(deadline, self._requests.long_poll_s)
            if poll_s <= 0:
                return task if task is not None else await self.get(task_id)
            request = self._requests.long_poll(task_id, poll_s)
            try:
                task = _task_of(await self._send(request, Safety.IDEMPOTENT, deadline=deadline))
            except InvalidRequest as error:
                self._requests.learn_longest_poll(error, poll_s)
                continue
            if task.is_finished:
                return task

    async def cancel(self, task_id: str) -> Task:
        """See ``Client.cancel``."""
        request = self._requests.task("DELETE", task_id)
        try:
            return _task_of(await self._send(request, Safety.IDEMPOTENT))
        except Conflict as conflict:
            if (
                conflict.attempts > 1
                and (task := await self.get(task_id)).status is TaskStatus.CANCELLED
            ):
                return task
            raise

    async def retry(self, task_id: str) -> Task:
        """See ``Client.retry``."""
        request = self._requests.task("POST", task_id, "/retry")
        return _task_of(await self._send(request, Safety.UNSENT))

    async def task_types(self) -> builtins.list[TaskType]:
        response = await self._send(self._requests.task_types(), Safety.IDEMPOTENT)
        return [TaskType.from_json(entry) for entry in response.json()]

    async def whoami(self) -> Identity:
        """Whom the service takes this client for (see ``Client.whoami``)."""
        response = await self._send(self._requests.whoami(), Safety.IDEMPOTENT)
        return Identity.from_json(response.json())

    async def list(
        self,
        *,
        status: StatusFilter = None,
        task_type: str | None = None,
        limit: int | None = None,
    ) -> AsyncGenerator[Task, None]:
        """See ``Client.list``."""
        request = self._requests.list(status, task_type, limit)
        response = await self._send(request, Safety.IDEMPOTENT, stream=True)
        try:
            async for line in response.aiter_lines():
                if (data := _ndjson(line)) is not None:
                    yield Task.from_json(data)
        except httpx.TransportError as error:
            raise _transport_error(request, error) from error
        finally:
            await response.aclose()

    async def watch(
        self, *, status: StatusFilter = None, task_type: str | None = None
    ) -> AsyncGenerator[WatchItem, None]:
        """See ``Client.watch``."""
        reconnects = Reconnects(self._requests.policy)
        reopened = False
        while True:
            request = self._requests.watch(status, task_type)
            response = await self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                if reopened:
                    yield Resync()
                async for line in response.aiter_lines():
                    if (data := _ndjson(line)) is not None:
                        reconnects.delivered()
                        yield _watch_item(data)
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            reopened = True
            await self._pause(reconnects, None, request)

    async def events(
        self,
        *,
        task_id: str | None = None,
        task_type: str | None = None,
        status: StatusFilter = None,
        last_event_id: int | str | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """See ``Client.events``."""
        params = _filters(task_id=task_id, task_type=task_type, status=status)
        position = FeedPosition(last_event_id)
        reconnects = Reconnects(self._requests.policy)
        while True:
            request = self._requests.events(params, position)
            response = await self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                async for sse in EventSource(response).aiter_sse():
                    if (item := position.take(sse)) is not None:
                        reconnects.delivered()
                        yield item
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            await self._pause(reconnects, position.retry_s, request)

    async def task_events(
        self, task_id: str, *, last_event_id: int | str | None = None
    ) -> AsyncGenerator[TaskEvent, None]:
        """See ``Client.task_events``."""
        position = FeedPosition(last_event_id)
        reconnects = Reconnects(self._requests.policy)
        while True:
            request = self._requests.task_events(task_id, position)
            response = await self._send(request, Safety.IDEMPOTENT, stream=True)
            reconnects.opened()
            try:
                if response.status_code == 204:
                    return
                async for sse in EventSource(response).aiter_sse():
                    if isinstance(item := position.take(sse), TaskEvent):
                        reconnects.delivered()
                        yield item
                    if sse.event in TERMINAL_EVENTS:  # (one seen before, too)
                        return
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            await self._pause(reconnects, position.retry_s, request)

    async def _send(
        self,
        request: httpx.Request,
        safety: Safety,
        *,
        stream: bool = False,
        deadline: float | None = None,
    ) -> httpx.Response:
        """See ``Client._send``."""
        attempts = self._requests.policy.start(safety)
        while True:
            attempts.made += 1
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                if _no_retry(delay := attempts.after_error(error), deadline):
                    raise _transport_error(request, error) from error
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                if _no_retry(delay := attempts.after_answer(response), deadline):
                    raise problem_of(response, attempts=attempts.made)
            assert delay is not None
            await self._sleep(delay)

    async def _pause(
        self, reconnects: Reconnects, retry_s: float | None, request: httpx.Request
    ) -> None:
        if (wait_s := reconnects.wait_s(retry_s)) is None:
            raise TransportError(f"{request.method} {request.url}: the stream keeps ending")
        await self._sleep(wait_s)
