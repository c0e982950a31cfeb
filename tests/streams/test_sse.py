"""Server-Sent Events, through a real uvicorn server (in-process transports buffer bodies)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from service.errors import TaskNotFound
from service.events import Event
from service.model import Task, TaskStatus
from tests.support import (
    FAILSAFE_S,
    Subscriptions,
    backend_of,
    bus_of,
    expect_event,
    finished,
    recording,
    serve,
    sse,
    take_events,
)

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2]}}
SLOW = {"task_type": "unstable_task", "parameters": {"failure_rate": 0}}
FAIL = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}


@pytest.fixture
async def live(
    make_app: Callable[..., FastAPI],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = make_app()
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield app, client


async def submit(client: httpx.AsyncClient, body: dict[str, Any] = SUM) -> str:
    response = await client.post("/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def test_a_task_lifecycle_arrives_in_order_with_increasing_ids(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    async with client.stream("GET", "/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        assert await anext(events) == {"id": str(bus_of(app).last_id)}
        task_id = await submit(client)
        received = await take_events(events, 3)
    statuses = [e["event"] for e in received if e["event"] != "task.progress"]
    assert statuses[:2] == ["task.queued", "task.processing"]
    ids = [int(e["id"]) for e in received]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = orjson.loads(received[0]["data"])
    assert (first["task_id"], first["status"]) == (task_id, "queued")


async def test_filters(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    subscriptions = Subscriptions(bus_of(app))
    params = {"task_type": "unstable_task", "status": "failed,completed"}
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        client.stream("GET", "/events", params=params) as response,
    ):
        events = sse(response)
        await subscriptions.opened(1)
        await finished(backend_of(app), await submit(client))  # another type: filtered out
        wanted = await submit(client, FAIL)  # its queued and processing: filtered out
        marker = await submit(client, FAIL)
        received = await take_events(events, 2)
    # Every event delivered before the marker's failure was up to the filter: only the two
    # failures came through.
    assert [(e["event"], orjson.loads(e["data"])["task_id"]) for e in received] == [
        ("task.failed", wanted),
        ("task.failed", marker),
    ]


async def test_a_task_id_filter(live: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = live
    backend, bus = backend_of(app), bus_of(app)
    start = bus.last_id
    other = await submit(client)
    task_id = await submit(client)
    await finished(backend, other)
    await finished(backend, task_id)
    page = await bus.history_after(start)
    assert not page.resync
    history = page.events
    buffered = [e for e in history if e.task_id == task_id]
    assert len(buffered) < len(history)  # the other task's events are in between
    async with client.stream(
        "GET", "/events", params={"task_id": task_id, "last_event_id": buffered[0].id - 1}
    ) as response:
        received = await take_events(sse(response), len(buffered))
    assert [int(e["id"]) for e in received] == [e.id for e in buffered]


async def test_resume_replays_every_event_after_the_id_with_no_gap_or_duplicate_at_the_seam(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    backend, bus = backend_of(app), bus_of(app)
    submitted = [await submit(client) for _ in range(5)]
    resume_after = bus.last_id - 7

    async def keep_submitting() -> None:  # events keep coming while the client connects
        for _ in range(10):
            submitted.append(await submit(client))

    publisher = asyncio.create_task(keep_submitting())
    async with client.stream(
        "GET", "/events", headers={"Last-Event-ID": str(resume_after)}
    ) as response:
        events = sse(response)
        await publisher
        for task_id in submitted:
            await finished(backend, task_id)
        expected = bus.last_id - resume_after
        received = await take_events(events, expected)
    assert [int(e["id"]) for e in received] == list(range(resume_after + 1, bus.last_id + 1))


async def test_the_header_wins_over_the_query_and_a_bad_query_id_is_400(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    await submit(client)
    latest = bus_of(app).last_id
    headers = {"Last-Event-ID": str(latest - 1)}
    async with client.stream(
        "GET", "/events", params={"last_event_id": 0}, headers=headers
    ) as response:
        [event] = await take_events(sse(response), 1)
    assert int(event["id"]) == latest  # not a resync from 0
    for bad in ("-1", "x", "1.5"):
        response = await client.get("/events", params={"last_event_id": bad})
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header", ["x", "-1", "", "1" * 5000, b"\xb2"], ids=["word", "negative", "empty", "huge", "²"]
)
async def test_a_last_event_id_header_that_is_no_event_id_gets_a_resync_not_a_refusal(
    live: tuple[FastAPI, httpx.AsyncClient], header: str | bytes
) -> None:
    # EventSource gives up for good on a 400; a resync keeps it, and tells it to reload.
    app, client = live
    await finished(backend_of(app), await submit(client))  # nothing more happens meanwhile
    async with client.stream("GET", "/events", headers={"Last-Event-ID": header}) as response:
        assert response.status_code == 200
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        resync = await anext(events)
    assert resync == {"event": "resync", "id": str(bus_of(app).last_id), "data": "{}"}


async def test_a_query_position_beyond_any_event_id_gets_a_resync(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    task_id = await submit(client)
    await finished(backend_of(app), task_id)
    beyond = "9" * 30  # more than any id can be (nor a Redis stream id)
    async with client.stream("GET", f"/events?last_event_id={beyond}") as response:
        assert response.status_code == 200
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        assert (await anext(events))["event"] == "resync"
    answer = await client.get(f"/tasks/{task_id}/events?last_event_id={beyond}")
    assert answer.status_code == 200 and "task.completed" in answer.text


async def test_the_stream_opens_with_its_position_so_a_quick_reconnect_misses_nothing(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    params = {"task_type": "generate_report"}  # nothing matches until the client has left
    async with client.stream("GET", "/events", params=params) as response:
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        position = (await anext(events))["id"]  # an id with no data: no event fires
    await submit(client)
    missed = await submit(client, {"task_type": "generate_report", "parameters": {"title": "t"}})
    headers = {"Last-Event-ID": position}  # what EventSource sends when it reconnects
    async with client.stream("GET", "/events", params=params, headers=headers) as response:
        [event] = await take_events(sse(response), 1)
    assert (event["event"], orjson.loads(event["data"])["task_id"]) == ("task.queued", missed)


async def test_an_id_older_than_the_buffer_gets_one_resync_then_live_events(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(event_buffer=3)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        for task_id in [await submit(client) for _ in range(3)]:
            await finished(backend_of(app), task_id)
        async with client.stream("GET", "/events", params={"last_event_id": 1}) as response:
            events = sse(response)
            assert await anext(events) == {"retry": "3000"}
            resync = await anext(events)
            assert resync == {"event": "resync", "id": str(bus_of(app).last_id), "data": "{}"}
            task_id = await submit(client)
            [live_event] = await take_events(events, 1)
    assert orjson.loads(live_event["data"])["task_id"] == task_id


async def test_a_heartbeat_comment_keeps_an_idle_stream_alive(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(heartbeat_s=0.05)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        client.stream("GET", "/events") as response,
    ):
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        assert "id" in await anext(events)
        async with asyncio.timeout(FAILSAFE_S):
            heartbeat = await anext(events)
    assert heartbeat["comment"].startswith("ping")


async def test_a_task_stream_starts_with_its_state_and_ends_after_its_end(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(work_scale=1.0)
    bus = bus_of(app)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        recording(bus) as recorder,
    ):
        async with expect_event(bus, "task.processing") as processing:
            task_id = await submit(client, SLOW)
        assert (await processing).task_id == task_id
        async with client.stream("GET", f"/tasks/{task_id}/events") as response:
            events = sse(response)
            assert await anext(events) == {"retry": "3000"}
            first = await anext(events)
            assert (first["event"], orjson.loads(first["data"])["status"]) == (
                "task.processing",
                "processing",
            )
            # Its id is the latest event's, and its data the task as that event left it: a
            # client resuming from it gets exactly the changes after what it was shown.
            [at] = [event for event in recorder.events if event.id == int(first["id"])]
            assert first["data"] == at.data.decode()
            assert int(first["id"]) >= (await processing).id
            assert (await client.delete(f"/tasks/{task_id}")).status_code == 200
            rest = [e async for e in events]  # the stream ends by itself
    assert [e["event"] for e in rest if e.get("event") != "task.progress"] == ["task.cancelled"]


async def test_a_finished_task_stream_is_one_event_and_a_reconnect_after_it_is_204(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    task_id = await submit(client)
    await finished(backend_of(app), task_id)
    async with client.stream("GET", f"/tasks/{task_id}/events") as response:
        received = [e async for e in sse(response) if "id" in e]
    assert [e["event"] for e in received] == ["task.completed"]
    again = await client.get(
        f"/tasks/{task_id}/events", headers={"Last-Event-ID": received[0]["id"]}
    )
    assert again.status_code == 204  # EventSource stops reconnecting
    missed = await client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": "1"})
    assert missed.status_code == 200 and "task.completed" in missed.text  # it missed the end


async def test_a_task_stream_whose_task_is_removed_as_it_opens_ends_cleanly(
    live: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evicted (or expired) between the route's check and the stream's first read: the
    # stream ends, whole; it does not break off mid-answer.
    app, client = live
    task_id = await submit(client)
    await finished(backend_of(app), task_id)

    async def removed(task_id: str) -> tuple[Task, int]:
        raise TaskNotFound(task_id)

    monkeypatch.setattr(backend_of(app), "read", removed)
    response = await client.get(f"/tasks/{task_id}/events")
    assert response.status_code == 200
    assert "event:" not in response.text


async def test_a_task_stream_for_unknown_or_malformed_ids(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    assert (
        await client.get("/tasks/0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11/events")
    ).status_code == 404
    assert (await client.get("/tasks/nope/events")).status_code == 400


async def test_a_stream_counts_once_against_the_rate_limit(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(rate_limit=2)
    subscriptions = Subscriptions(bus_of(app))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/events") as response:
            assert response.headers["ratelimit"].startswith('"per-ip";r=1;')
            events = sse(response)
            await subscriptions.opened(1)
            await submit(client)  # the second request
            assert len(await take_events(events, 3)) == 3  # still streaming, not counted again
        assert (await client.get("/tasks")).status_code == 429


async def test_a_subscriber_that_never_reads_is_dropped_and_the_others_miss_nothing(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(subscriber_queue=20, send_timeout_s=0.5, heartbeat_s=0.2)
    bus = bus_of(app)
    subscriptions = Subscriptions(bus)
    pad = Task(
        task_id="pad",
        task_type="compute_sum",
        parameters={"pad": "x" * 4000},
        created_at=datetime.now(UTC),
    )
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect((host, int(port)))
            slow.sendall(b"GET /events HTTP/1.1\r\nHost: taskwire\r\n\r\n")  # and never reads
            await subscriptions.opened(1)
            stuck = set(url.server.server_state.tasks)  # the one request in flight
            assert len(stuck) == 1
            async with client.stream("GET", "/events") as response:
                events = sse(response)
                await subscriptions.opened(2)
                assert bus.subscriber_count == 2
                first = bus.last_id + 1
                received: list[int] = []
                for burst in range(100):  # 4 MB in all, in bursts the reading client keeps up with
                    # Straight onto the bus, as a backend delivers them (its history is left
                    # out: nothing here resumes).
                    for n in range(10):
                        bus.deliver(Event.of(first + burst * 10 + n, "task.progress", pad))
                    received += [int(e["id"]) for e in await take_events(events, 10)]
                assert received == list(range(first, first + 1000))
                assert bus.dropped == 1 and bus.subscriber_count == 1
                task_id = await submit(client)  # the workers are not held up either
                assert (await finished(backend_of(app), task_id)).status is TaskStatus.COMPLETED
                # The stuck request is torn down (send timeout, or the heartbeat finding the
                # stream over) although its client has not read a byte: only ours is left.
                _, pending = await asyncio.wait(stuck, timeout=FAILSAFE_S)
                assert not pending
                assert url.requests_in_flight == 1
