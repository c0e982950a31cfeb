"""The Python client against a real server on a free port: typed tasks and errors, retries
that never create a second task, and streams that resume by themselves."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable
from contextlib import aclosing
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from rich.console import Console

from taskwire import (
    AsyncClient,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    Priority,
    ProblemError,
    RateLimited,
    Resync,
    Snapshot,
    Synced,
    Task,
    TaskEvent,
    TaskStatus,
    TaskType,
    TaskwireError,
    TransportError,
    Unavailable,
    WatchItem,
    display,
)
from taskwire.client import idempotency_header
from taskwire.retries import RetryPolicy, Safety
from tests.processes import free_port, spawn
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    Subscriptions,
    backend_of,
    bus_of,
    engine_of,
    serve,
)
from tests.taskwire.conftest import (
    SUM,
    AsyncSleeps,
    Gate,
    LossyProxy,
    Sleeps,
    Steps,
    ThreadedServer,
    live_client,
    no_keepalive,
    submission,
)

QUEUED, PROCESSING, COMPLETED = TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED
FAILED, CANCELLED = TaskStatus.FAILED, TaskStatus.CANCELLED
QUOTA = "https://iana.org/assignments/http-problem-types#quota-exceeded"


async def stored(app: FastAPI) -> int:
    """How many tasks the service holds."""
    return sum((await backend_of(app).counts()).values())


# Typed results


async def test_submit_get_and_wait_return_typed_tasks(make_app: Callable[..., FastAPI]) -> None:
    async with live_client(make_app()) as client:
        task = await client.submit("compute_sum", SUM, priority="high")
        assert isinstance(task, Task)
        assert (task.task_type, task.status, task.priority, task.attempt) == (
            "compute_sum",
            QUEUED,
            Priority.HIGH,
            1,
        )
        assert task.parameters == {"numbers": [1.0, 2.0, 3.5]}
        assert isinstance(task.created_at, datetime) and task.created_at.tzinfo is not None
        assert (task.started_at, task.finished_at, task.result, task.error) == (None,) * 4

        done = await client.wait(task.task_id)
        assert (done.status, done.progress, done.result, done.eta_s) == (
            COMPLETED,
            100,
            {"sum": 6.5},
            None,
        )
        assert done.started_at is not None and done.finished_at is not None
        assert task.created_at <= done.started_at <= done.finished_at
        assert await client.get(task.task_id) == done
        assert done.to_json()["result"] == {"sum": 6.5}  # the JSON as the service sent it

        waited = await client.submit("compute_sum", SUM, wait=True)
        assert waited.status is COMPLETED and waited.priority is Priority.NORMAL


async def test_a_failed_task_carries_its_error(make_app: Callable[..., FastAPI]) -> None:
    async with live_client(make_app()) as client:
        task = await client.submit("unstable_task", {"failure_rate": 1}, wait=True)
    assert task.status is FAILED and task.is_finished
    assert task.error is not None and task.error.type == "TaskFailedError"
    assert task.result is None


def test_unknown_fields_are_kept_not_refused() -> None:
    data = {
        "task_id": str(uuid.uuid4()),
        "task_type": "compute_sum",
        "status": "completed",
        "priority": "low",
        "parameters": {"numbers": [1.0]},
        "progress": 100,
        "eta_s": None,
        "result": {"sum": 1},
        "error": None,
        "attempt": 1,
        "created_at": "2026-11-22T07:54:03.356552Z",
        "started_at": "2026-11-22T07:54:03.4Z",
        "finished_at": "2026-11-22T07:54:04Z",
        "owner": "ada",  # a field a later service may add
    }
    task = Task.from_json(data)
    assert task.extra == {"owner": "ada"}
    assert task.finished_at is not None and task.finished_at.utcoffset() is not None
    assert task.to_json() == data


async def test_wait_long_polls_again_until_the_task_has_finished(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    # A long-poll answers when the status changes (queued -> processing here): the client
    # asks again until the task has finished.
    app = make_app(concurrency=1)
    subscriptions = Subscriptions(bus_of(app))
    async with live_client(app) as client:
        blocker = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        task = await client.submit("compute_sum", SUM)  # queued behind the blocker
        before = subscriptions.count
        waiting = asyncio.create_task(client.wait(task.task_id))
        await subscriptions.opened(before + 1)  # the first long-poll sees it queued
        await engine_of(app).cancel(blocker.task_id)  # (which subscribes once itself)
        await gate.reached_by(2)  # the task is processing: the first long-poll answers
        await subscriptions.opened(before + 3)  # and the client asks again
        assert not waiting.done()
        await gate.open()
        done = await waiting
    assert done.status is COMPLETED and done.task_id == task.task_id


async def test_wait_keeps_to_a_service_whose_longest_long_poll_is_shorter(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    app = make_app(long_poll_max_s=0.5)  # the client asks for 10 s: refused, then 0.5
    subscriptions = Subscriptions(bus_of(app))
    async with live_client(app) as client:
        task = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        before = subscriptions.count
        waiting = asyncio.create_task(client.wait(task.task_id))
        await subscriptions.opened(before + 1)  # long-polling, within the service's limit
        await gate.open()
        done = await waiting
    assert done.status is COMPLETED


async def test_wait_with_a_timeout_returns_the_task_as_it_is_then(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    async with live_client(make_app()) as client:
        task = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        held = await client.wait(task.task_id, timeout_s=0.2)
        assert held.status is PROCESSING and not held.is_finished
        assert (await client.wait(task.task_id, timeout_s=0)).status is PROCESSING
        await gate.open()


async def test_wait_with_a_timeout_retries_no_later_than_it_against_a_silent_service() -> None:
    # A service that takes the connection and never answers: each long-poll waits its own
    # timeout plus the client's request timeout; a retry past the caller's deadline is not
    # sent (before: up to `retries` more, ~50 s for a wait of 1 s with the defaults).
    handlers: list[asyncio.Task[Any]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.read()  # until the client gives up and closes
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    sleeps = AsyncSleeps()
    try:
        async with AsyncClient(url, timeout_s=0.1, retries=5, sleep=sleeps) as client:
            with pytest.raises(TransportError):
                await client.wait(str(uuid.uuid4()), timeout_s=0.05)
        async with asyncio.timeout(FAILSAFE_S):
            await asyncio.gather(*handlers)  # each saw the client close
    finally:
        server.close()
        await server.wait_closed()
    assert (len(handlers), sleeps.asked) == (1, [])


async def test_cancel_and_retry(make_app: Callable[..., FastAPI], gate: Gate) -> None:
    async with live_client(make_app()) as client:
        task = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        cancelled = await client.cancel(task.task_id)
        assert cancelled.status is CANCELLED and cancelled.finished_at is not None

        with pytest.raises(Conflict) as conflict:
            await client.cancel(task.task_id)
        error = conflict.value
        assert (error.status, error.title, error.type) == (409, "Conflict", "about:blank")
        assert "cancelled" in error.detail and error.instance == f"/tasks/{task.task_id}"
        assert error.request_id and error.attempts == 1

        retried = await client.retry(task.task_id)
        assert (retried.status, retried.attempt, retried.finished_at) == (QUEUED, 2, None)
        await gate.open()
        done = await client.wait(task.task_id)
        assert (done.status, done.attempt) == (COMPLETED, 2)
        with pytest.raises(Conflict):
            await client.retry(task.task_id)


async def test_errors_carry_their_problem_details(make_app: Callable[..., FastAPI]) -> None:
    async with live_client(make_app()) as client:
        missing = str(uuid.uuid4())
        with pytest.raises(NotFound) as not_found:
            await client.get(missing)
        assert isinstance(not_found.value, ProblemError | TaskwireError)
        assert (not_found.value.status, not_found.value.instance) == (404, f"/tasks/{missing}")
        assert not_found.value.request_id
        assert str(not_found.value).startswith("404 Not Found: ")

        with pytest.raises(InvalidRequest) as invalid:
            await client.submit("compute_sum", {"numbers": []})
        error = invalid.value
        assert (error.status, error.title, error.detail) == (
            400,
            "Bad Request",
            "invalid parameters.numbers",
        )
        assert [(e.location, e.field, e.type) for e in error.errors] == [
            ("body", "parameters.numbers", "too_short")
        ]
        assert error.to_json()["errors"][0]["field"] == "parameters.numbers"

        with pytest.raises(InvalidRequest) as bad_id:
            await client.cancel("not-a-uuid")
        assert [(e.location, e.field) for e in bad_id.value.errors] == [("path", "task_id")]

        with pytest.raises(InvalidRequest) as bad_type:
            await client.submit("no_such_type", {})
        assert bad_type.value.errors[0].field == "task_type"


async def test_task_types(make_app: Callable[..., FastAPI]) -> None:
    async with live_client(make_app()) as client:
        types = {t.task_type: t for t in await client.task_types()}
    compute = types["compute_sum"]
    assert isinstance(compute, TaskType)
    assert (compute.min_duration_s, compute.max_duration_s) == (5.0, 15.0)
    assert compute.parameters_schema["required"] == ["numbers"]
    assert compute.description == "Add up a list of numbers."
    assert len(types) == 7


# Streams


async def test_list_streams_ndjson_newest_first_with_filters(
    make_app: Callable[..., FastAPI],
) -> None:
    async with (
        serve(make_app()) as url,
        LossyProxy(url, lambda method, path: False) as proxy,
        AsyncClient(proxy.url, http=no_keepalive()) as client,
    ):
        ids = [(await client.submit("compute_sum", SUM, wait=True)).task_id for _ in range(3)]
        listing = client.list()
        assert not isinstance(listing, list)  # an iterator: each task as its line arrives
        assert [task.task_id async for task in listing] == ids[::-1]
        newest = client.list(status=["completed", "failed"], limit=2)
        assert [task.task_id async for task in newest] == ids[:0:-1]
        assert [task async for task in client.list(status="queued")] == []
        assert [task async for task in client.list(task_type="generate_report")] == []
        async with aclosing(client.list()) as tasks:
            first = await anext(tasks)  # a reader may stop early: the stream is closed
        assert isinstance(first, Task) and first.task_id == ids[-1]
    lists = [seen for seen in proxy.seen if seen.path.startswith("/tasks?")]
    assert lists and {seen.headers["accept"] for seen in lists} == {"application/x-ndjson"}


async def test_watch_gives_the_tasks_then_synced_then_live_events(
    make_app: Callable[..., FastAPI],
) -> None:
    async with live_client(make_app()) as client:
        first = await client.submit("compute_sum", SUM, wait=True)
        async with aclosing(client.watch(status="completed")) as items:
            assert await anext(items) == Snapshot(first)
            assert await anext(items) == Synced()
            second = await client.submit("compute_sum", SUM, wait=True)
            event = await anext(items)
    assert isinstance(event, TaskEvent)
    assert (event.name, event.task) == ("task.completed", second)
    assert event.to_json()["type"] == "task.completed"


async def test_a_dropped_watch_is_opened_again_after_a_resync(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    app = make_app(subscriber_queue=2, concurrency=1)
    sleeps = AsyncSleeps()
    async with live_client(app, sleep=sleeps) as client, aclosing(client.watch()) as items:
        assert await anext(items) == Synced()  # nothing yet
        # Five events in one turn of the loop: more than the watch may fall behind.
        for _ in range(5):
            await engine_of(app).submit(submission())
        seen: list[WatchItem] = []
        async with asyncio.timeout(FAILSAFE_S):
            while not (seen and isinstance(seen[-1], Synced)):
                seen.append(await anext(items))
    assert bus_of(app).dropped >= 1
    resync = next(i for i, item in enumerate(seen) if isinstance(item, Resync))
    snapshot = seen[resync + 1 : -1]
    assert len(snapshot) == 5 and all(isinstance(item, Snapshot) for item in snapshot)
    assert sleeps.asked == [RetryPolicy().backoff_s]


async def test_events_are_typed_filtered_and_in_order(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    subscriptions = Subscriptions(bus_of(app))
    async with (
        live_client(app) as client,
        aclosing(client.events(task_type="compute_sum")) as feed,
    ):
        first = asyncio.ensure_future(anext(feed))
        await subscriptions.opened(1)
        await client.submit("generate_report", {"title": "left out"})
        task = await client.submit("compute_sum", SUM)
        items = [await first]
        async with asyncio.timeout(FAILSAFE_S):
            while not (isinstance(items[-1], TaskEvent) and items[-1].is_terminal):
                items.append(await anext(feed))
    events = [item for item in items if isinstance(item, TaskEvent)]
    assert events == items
    assert {event.task.task_id for event in events} == {task.task_id}
    assert (events[0].name, events[-1].name) == ("task.queued", "task.completed")
    assert events[-1].task.result == {"sum": 6.5}
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))


async def test_events_resume_with_last_event_id_after_the_server_drops_the_stream(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    app = make_app(subscriber_queue=2, concurrency=1)
    bus = bus_of(app)
    subscriptions = Subscriptions(bus)
    sleeps = AsyncSleeps()
    async with (
        serve(app) as url,
        LossyProxy(url, lambda method, path: False) as proxy,
        AsyncClient(proxy.url, http=no_keepalive(), sleep=sleeps) as client,
        aclosing(client.events()) as feed,
    ):
        first = asyncio.ensure_future(anext(feed))
        await subscriptions.opened(1)
        start = bus.last_id  # what the stream opened with, as a bare id: line
        for _ in range(5):  # in one turn of the loop: more than the stream may fall behind
            await engine_of(app).submit(submission())
        await gate.reached_by(1)
        items = [await first]
        async with asyncio.timeout(FAILSAFE_S):
            while len(items) < 6:  # five queued, one processing
                items.append(await anext(feed))
    assert bus.dropped == 1
    assert all(isinstance(item, TaskEvent) for item in items)
    assert [item.id for item in items if isinstance(item, TaskEvent)] == list(
        range(start + 1, start + 7)
    )  # nothing missed, nothing twice
    feeds = [seen for seen in proxy.seen if seen.path == "/events"]
    assert len(feeds) == 2 and "last-event-id" not in feeds[0].headers
    resumed_from = int(feeds[1].headers["last-event-id"])
    assert start <= resumed_from < start + 6
    assert sleeps.asked == [3.0]  # the stream's retry: 3000


async def test_a_resume_point_older_than_the_history_surfaces_a_resync(
    make_app: Callable[..., FastAPI],
) -> None:
    async with (
        live_client(make_app()) as client,
        aclosing(client.events(last_event_id=1)) as feed,
    ):
        resync = await anext(feed)
        assert isinstance(resync, Resync) and resync.id is not None
        task = await client.submit("compute_sum", SUM)
        event = await anext(feed)  # then it carries on, live
    assert isinstance(event, TaskEvent)
    assert (event.name, event.task.task_id) == ("task.queued", task.task_id)
    assert event.id > resync.id
    assert resync.to_json() == {"type": "resync", "id": resync.id}


async def test_task_events_end_after_its_end_and_a_reconnect_after_that_is_204(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    async with live_client(make_app()) as client:
        task = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        async with aclosing(client.task_events(task.task_id)) as stream:
            current = await anext(stream)  # its state first
            assert (current.name, current.task.status) == ("task.processing", PROCESSING)
            await gate.open()
            rest = [event async for event in stream]
        assert [event.name for event in rest] == ["task.completed"]
        assert rest[-1].task.result == {"gated": True} and rest[-1].id > current.id
        after_the_end = client.task_events(task.task_id, last_event_id=rest[-1].id)
        assert [event async for event in after_the_end] == []
        with pytest.raises(NotFound):
            [event async for event in client.task_events(str(uuid.uuid4()))]


# Retries


async def test_a_rate_limited_call_waits_out_retry_after_then_succeeds(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(rate_limit=1, rate_window_s=7)

    async def time_passes(seconds: float) -> None:
        clock.advance(seconds)

    sleeps = AsyncSleeps(then=time_passes)
    async with live_client(app, sleep=sleeps, max_wait_s=10) as client:
        first = await client.submit("compute_sum", SUM)  # the window's one request
        second = await client.submit("compute_sum", SUM)  # 429 with Retry-After: 7, then 202
        assert sleeps.asked == [7.0]
        assert (await client.get(first.task_id)).task_id == first.task_id  # a GET too
        assert sleeps.asked == [7.0, 7.0]
    assert second.task_id != first.task_id
    assert await stored(app) == 2


async def test_a_retry_after_beyond_the_budget_is_raised_at_once(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(rate_limit=1, rate_window_s=60)
    sleeps = AsyncSleeps()
    async with live_client(app, sleep=sleeps, max_wait_s=5) as client:
        task = await client.submit("compute_sum", SUM)
        with pytest.raises(RateLimited) as limited:
            await client.get(task.task_id)
    error = limited.value
    assert (error.status, error.type, error.retry_after_s, error.attempts) == (429, QUOTA, 60, 1)
    assert error.to_json()["retry_after_s"] == 60
    assert sleeps.asked == []


async def test_a_submit_refused_by_a_full_store_is_sent_again_after_retry_after(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    app = make_app(max_tasks=1)
    async with live_client(app) as client:
        first = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)  # live: the store is full

        async def room_is_made(seconds: float) -> None:
            await engine_of(app).cancel(first.task_id)  # a finished task may be evicted

        sleeps = AsyncSleeps(then=room_is_made)
        async with AsyncClient(client.base_url, sleep=sleeps) as retrying:
            second = await retrying.submit("compute_sum", SUM)
        async with AsyncClient(client.base_url, retries=0) as impatient:
            with pytest.raises(Unavailable) as unavailable:
                await impatient.submit("compute_sum", SUM)  # no retry allowed: the 503 itself
        assert unavailable.value.retry_after_s == 1 and unavailable.value.status == 503
    assert sleeps.asked == [1.0]  # at least 1 s, the docs say
    assert second.status is QUEUED


async def test_no_connection_is_a_transport_error_after_the_retries() -> None:
    sleeps = AsyncSleeps()
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", retries=2, sleep=sleeps) as client:
        with pytest.raises(TransportError) as failed:
            await client.get(str(uuid.uuid4()))
    assert sleeps.asked == [0.5, 1.0]  # a backoff, doubling
    assert isinstance(failed.value, TaskwireError) and failed.value.__cause__ is not None


async def test_retrying_a_submit_never_creates_a_second_task(
    make_app: Callable[..., FastAPI],
) -> None:
    # The first POST reaches the service and creates the task, and its answer is lost: the
    # client sends it again with the same Idempotency-Key and gets that same task back.
    app = make_app()
    sleeps = AsyncSleeps()
    async with (
        serve(app) as url,
        LossyProxy(url, lambda method, path: method == "POST" and path == "/tasks") as proxy,
        AsyncClient(proxy.url, http=no_keepalive(), sleep=sleeps) as client,
    ):
        task = await client.submit("compute_sum", SUM)
        held = [t.task_id async for t in client.list()]
    posts = [seen for seen in proxy.seen if seen.method == "POST"]
    assert [seen.dropped for seen in posts] == [True, False]
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert held == [task.task_id]
    assert await stored(app) == 1
    assert sleeps.asked == [0.5]


async def test_a_key_sent_again_answers_the_same_task_and_a_key_reused_is_422(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    async with live_client(app) as client:
        first = await client.submit("compute_sum", SUM, idempotency_key="order-42")
        again = await client.submit("compute_sum", SUM, idempotency_key="order-42")
        with pytest.raises(InvalidRequest) as reused:
            await client.submit("compute_sum", {"numbers": [9]}, idempotency_key="order-42")
    assert again.task_id == first.task_id and await stored(app) == 1
    assert reused.value.status == 422 and reused.value.type.endswith("idempotency-key-mismatch")


async def test_a_retry_whose_answer_is_lost_is_not_sent_again(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    sleeps = AsyncSleeps()
    async with (
        serve(app) as url,
        LossyProxy(url, lambda method, path: path.endswith("/retry")) as proxy,
        AsyncClient(proxy.url, http=no_keepalive(), sleep=sleeps) as client,
    ):
        failed = await client.submit("unstable_task", {"failure_rate": 1}, wait=True)
        with pytest.raises(TransportError):
            await client.retry(failed.task_id)
        assert (await client.get(failed.task_id)).attempt == 2  # it did happen, once
    assert len([seen for seen in proxy.seen if seen.path.endswith("/retry")]) == 1
    assert sleeps.asked == []


async def test_a_cancel_whose_answer_is_lost_is_sent_again_and_answers_the_cancelled_task(
    make_app: Callable[..., FastAPI], gate: Gate
) -> None:
    app = make_app()
    async with (
        serve(app) as url,
        LossyProxy(url, lambda method, path: method == "DELETE") as proxy,
        AsyncClient(proxy.url, http=no_keepalive(), sleep=AsyncSleeps()) as client,
    ):
        task = await client.submit("compute_sum", SUM)
        await gate.reached_by(1)
        cancelled = await client.cancel(task.task_id)  # lost, sent again: 409, so it asks
    assert cancelled.status is CANCELLED and cancelled.task_id == task.task_id
    assert [seen.dropped for seen in proxy.seen if seen.method == "DELETE"] == [True, False]


async def test_an_idempotency_key_is_sent_as_a_structured_field_string(
    make_app: Callable[..., FastAPI],
) -> None:
    async with (
        serve(make_app()) as url,
        LossyProxy(url, lambda method, path: False) as proxy,
        AsyncClient(proxy.url, http=no_keepalive()) as client,
    ):
        await client.submit("compute_sum", SUM, idempotency_key='order "42"')
        await client.submit("compute_sum", SUM)
    keys = [seen.headers["idempotency-key"] for seen in proxy.seen if seen.method == "POST"]
    assert keys[0] == r'"order \"42\""'
    assert str(uuid.UUID(keys[1].strip('"'), version=4)) == keys[1].strip('"')


@pytest.mark.parametrize("key", ["", "x" * 256, "café", "tab\there"])
def test_an_idempotency_key_that_is_not_one_is_refused_before_any_request(key: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        idempotency_header(key)


@pytest.mark.parametrize(
    ("safety", "error", "retried"),
    [
        (Safety.UNSENT, "connect", True),
        (Safety.UNSENT, "read", False),
        (Safety.IDEMPOTENT, "read", True),
        (Safety.SUBMIT, "read", True),
    ],
)
def test_which_transport_errors_are_retried(safety: Safety, error: str, retried: bool) -> None:
    import httpx

    failure = httpx.ConnectError("refused") if error == "connect" else httpx.ReadError("reset")
    attempts = RetryPolicy().start(safety)
    attempts.made = 1
    assert (attempts.after_error(failure) is not None) is retried


# The blocking client, and the progress display


def test_the_blocking_client(threaded: Callable[..., ThreadedServer], gate: Gate) -> None:
    with threaded() as server, Client(server.url) as client:
        assert "compute_sum" in {t.task_type for t in client.task_types()}
        held = client.submit("compute_sum", SUM, priority="low")
        server.call(lambda: gate.reached_by(1))
        assert client.cancel(held.task_id).status is CANCELLED
        with pytest.raises(Conflict):
            client.cancel(held.task_id)
        server.call(gate.open)
        assert client.retry(held.task_id).attempt == 2
        done = client.wait(held.task_id)
        assert (done.status, done.result, done.priority) == (COMPLETED, {"gated": True}, "low")
        assert client.get(held.task_id) == done
        assert [t.task_id for t in client.list(status="completed", limit=5)] == [held.task_id]
        with pytest.raises(NotFound):
            client.get(str(uuid.uuid4()))
        with pytest.raises(InvalidRequest) as invalid:
            client.submit("compute_sum", {"numbers": ["1"]})
        assert invalid.value.errors[0].field == "parameters.numbers.0"

        feed = client.events(last_event_id="0")  # older than the history: a resync first
        assert isinstance(next(feed), Resync)
        task = client.submit("compute_sum", SUM, wait=True)
        names = []
        for item in feed:
            assert isinstance(item, TaskEvent) and item.task.task_id == task.task_id
            names.append(item.name)
            if item.is_terminal:
                break
        feed.close()
        assert (names[0], names[-1]) == ("task.queued", "task.completed")

        stream = list(client.task_events(task.task_id))
        assert [event.name for event in stream] == ["task.completed"]

        watch = client.watch(status="completed", task_type="compute_sum")
        assert [next(watch), next(watch), next(watch)] == [Snapshot(task), Snapshot(done), Synced()]
        watch.close()


def test_the_blocking_client_waits_out_a_rate_limit(
    threaded: Callable[..., ThreadedServer], clock: FakeClock
) -> None:
    sleeps = Sleeps(then=clock.advance)
    with threaded(rate_limit=1, rate_window_s=3) as server:
        with Client(server.url, sleep=sleeps) as client:
            first = client.submit("compute_sum", SUM)
            second = client.submit("compute_sum", SUM)
        assert sleeps.asked == [3.0] and first.task_id != second.task_id
        assert server.call(lambda: stored(server.app)) == 2


def test_the_progress_bar_follows_the_task_stream(
    threaded: Callable[..., ThreadedServer], steps: Steps
) -> None:
    with threaded(work_scale=1.0) as server, Client(server.url) as client:
        task = client.submit("data_processing", {"rows": 500_000})
        stream = client.task_events(task.task_id)
        first = next(stream)  # its state, as the stream opened
        server.call(steps.go)
        events = [first, *stream]
    assert [e.task.progress for e in events if e.name == "task.progress"] == [25, 50, 75]
    assert events[-1].name == "task.completed"

    halfway = Console(record=True, width=100)
    upto = next(i for i, e in enumerate(events) if e.task.progress == 50)
    shown = display.follow(task, iter(events[: upto + 1]), halfway)
    assert shown.progress == 50
    line = halfway.export_text()
    assert "data_processing " + task.task_id[:8] in line
    assert " 50% processing  ETA " in line  # the service's own estimate of the time left

    finished = Console(record=True, width=100)
    assert display.follow(task, iter(events), finished).status is COMPLETED
    assert "100% completed" in finished.export_text()


# Streams that break off, and services that go away


async def test_a_list_broken_off_midway_is_a_transport_error(
    make_app: Callable[..., FastAPI],
) -> None:
    async with (
        serve(make_app()) as url,
        LossyProxy(url, lambda method, path: method == "GET", cut_after=b"}\n") as proxy,
        AsyncClient(proxy.url, http=no_keepalive()) as client,
    ):
        for _ in range(3):
            await client.submit("compute_sum", SUM)
        got: list[Task] = []

        async def read_all() -> None:
            async for task in client.list():
                got.append(task)

        with pytest.raises(TransportError):
            await read_all()
    assert len(got) == 1  # what arrived before the break is given; the rest cannot resume


async def test_events_broken_off_midway_resume_where_they_were(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    sleeps = AsyncSleeps()
    subscriptions = Subscriptions(bus_of(app))
    async with (
        serve(app) as url,
        LossyProxy(
            url, lambda method, path: path.startswith("/events"), cut_after=b"}\n\n"
        ) as proxy,
        AsyncClient(proxy.url, http=no_keepalive(), sleep=sleeps) as client,
    ):
        task = await client.submit("unstable_task", {"failure_rate": 1}, wait=True)
        async with aclosing(client.events(task_id=task.task_id, last_event_id=0)) as feed:
            resync = await anext(feed)  # 0 is older than the history
            assert isinstance(resync, Resync)
            second = asyncio.ensure_future(anext(feed))
            await subscriptions.opened(2)  # broken off after the resync, and open again
            retried = await client.retry(task.task_id)
            event = await second
    assert isinstance(event, TaskEvent) and event.task.attempt == retried.attempt == 2
    feeds = [seen for seen in proxy.seen if seen.path.startswith("/events")]
    assert [seen.dropped for seen in feeds] == [True, False]
    assert feeds[1].headers["last-event-id"] == str(resync.id)
    assert sleeps.asked == [3.0]


async def test_task_events_resume_after_a_drop_and_end_with_the_end(
    make_app: Callable[..., FastAPI], steps: Steps
) -> None:
    app = make_app(subscriber_queue=2, work_scale=1.0)
    sleeps = AsyncSleeps()
    async with live_client(app, sleep=sleeps) as client:
        task = await client.submit("compute_sum", SUM)
        async with aclosing(client.task_events(task.task_id)) as stream:
            first = await anext(stream)
            await steps.go()  # three progress events and the end in one turn: too many
            rest = [event async for event in stream]
    assert bus_of(app).dropped == 1
    events = [first, *rest]
    assert events[-1].name == "task.completed" and events[-1].task.result == {"stepped": True}
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert sleeps.asked == [3.0]


async def test_a_stream_that_keeps_ending_gives_up_after_the_retries() -> None:
    from fastapi.responses import Response

    hollow = FastAPI()  # a service whose feed ends at once, saying nothing, every time

    @hollow.get("/events")
    async def events() -> Response:
        return Response(b"", media_type="text/event-stream")

    sleeps = AsyncSleeps()
    async with live_client(hollow, sleep=sleeps, retries=2) as client:
        with pytest.raises(TransportError, match="the stream keeps ending"):
            async for _ in client.events():
                pass
    assert sleeps.asked == [3.0, 3.0]


async def test_a_feed_whose_service_goes_away_ends_in_a_transport_error() -> None:
    sleeps = AsyncSleeps()
    # (No rate limit: the client reconnects at once here, while the service drains.)
    with spawn("uvicorn", TASKWIRE_WORK_SCALE="0", TASKWIRE_RATE_LIMIT="0") as (url, process):
        async with (
            AsyncClient(url, sleep=sleeps, retries=1) as client,
            aclosing(client.events(last_event_id=0)) as feed,
        ):
            assert isinstance(await anext(feed), Resync)  # connected
            process.send_signal(signal.SIGTERM)  # its streams end, and it exits
            with pytest.raises(TransportError):
                await anext(feed)
    assert sleeps.asked[0] == 3.0  # the stream's retry:, before it tried again


def test_the_url_comes_from_taskwire_url(
    threaded: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Client().base_url == "http://127.0.0.1:8000"
    with threaded() as server:
        monkeypatch.setenv("TASKWIRE_URL", server.url + "/")
        with Client() as client:
            assert client.base_url == server.url
            task = client.submit("unstable_task", wait=True)  # every parameter defaulted
    assert task.parameters == {"failure_rate": 0.5}


def test_the_blocking_client_resumes_and_retries_like_the_async_one(
    threaded: Callable[..., ThreadedServer], gate: Gate
) -> None:
    import httpx

    sleeps = Sleeps()
    with threaded(subscriber_queue=2, concurrency=1) as server:
        app = server.app
        proxy = LossyProxy(server.url, lambda method, path: method == "DELETE")
        server.call(proxy.__aenter__)
        http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        with Client(proxy.url, sleep=sleeps, http=http) as client:
            held = client.submit("compute_sum", SUM)
            server.call(lambda: gate.reached_by(1))
            assert client.cancel(held.task_id).status is CANCELLED  # lost, sent again: 409

            async def burst() -> None:  # more than a subscriber may fall behind
                for _ in range(5):
                    await engine_of(app).submit(submission())

            feed = client.events(last_event_id=0)
            watch = client.watch()
            assert isinstance(next(feed), Resync)
            assert isinstance(next(watch), Snapshot) and next(watch) == Synced()
            server.call(burst)
            queued = [next(feed) for _ in range(5)]
            assert [item.name for item in queued if isinstance(item, TaskEvent)] == [
                "task.queued"
            ] * 5
            items = [next(watch)]
            while not isinstance(items[-1], Synced):
                items.append(next(watch))
            assert any(isinstance(item, Resync) for item in items)  # dropped, opened again
            feed.close()
            watch.close()

            first = client.get(queued[0].task.task_id)
            stream = client.task_events(first.task_id)
            assert next(stream).task.status is PROCESSING
            server.call(gate.open)
            end = [*stream][-1]
            assert end.name == "task.completed"
            assert list(client.task_events(first.task_id, last_event_id=end.id)) == []
        server.call(lambda: proxy.__aexit__(None, None, None))
    assert bus_of(app).dropped >= 2
    assert 3.0 in sleeps.asked and 0.5 in sleeps.asked
