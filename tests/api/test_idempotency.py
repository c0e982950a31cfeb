"""``Idempotency-Key`` on ``POST /tasks``: each rule of the contract at its edge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api.idempotency import parse_key
from tests.support import (
    FAILSAFE_S,
    FakeClock,
    backend_of,
    client_for,
    finished,
    running,
    serve,
)

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}
MISMATCH = "https://iana.org/assignments/http-problem-types#idempotency-key-mismatch"


@pytest.fixture
async def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def post(
    client: httpx.AsyncClient, key: str | None, body: Any = SUM, **headers: str
) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/tasks", json=body, headers=headers)


async def held(client: httpx.AsyncClient) -> int:
    tasks: int = (await client.get("/healthz")).json()["tasks"]
    return tasks


@pytest.mark.parametrize(
    ("header", "key"),
    [
        pytest.param("abc-123", "abc-123", id="bare"),
        pytest.param('"abc-123"', "abc-123", id="quoted-same-key"),
        pytest.param('"a \\"quoted\\" \\\\ key"', 'a "quoted" \\ key', id="escapes"),
        pytest.param("x" * 255, "x" * 255, id="255-bare"),
        pytest.param('"' + "x" * 255 + '"', "x" * 255, id="255-quoted"),
        pytest.param("a b", "a b", id="inner-space"),
    ],
)
def test_keys_are_structured_field_strings_with_quotes_optional(header: str, key: str) -> None:
    assert parse_key(header) == key


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param('""', id="empty-quoted"),
        pytest.param("x" * 256, id="256-bare"),
        pytest.param('"' + "x" * 256 + '"', id="256-quoted"),
        pytest.param("k\x01", id="control"),
        pytest.param("clé", id="not-ascii"),
        pytest.param('"open', id="unbalanced-quote"),
        pytest.param('"a"b"', id="quote-inside-quotes"),
        pytest.param('"a\\b"', id="bad-escape"),
    ],
)
def test_anything_else_is_not_a_key(header: str) -> None:
    assert parse_key(header) is None


async def test_a_bad_key_is_a_400_with_the_header_named(client: httpx.AsyncClient) -> None:
    response = await post(client, '"open')
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["in"], error["field"]) == ("header", "Idempotency-Key")
    assert await held(client) == 0


async def test_a_key_given_twice_is_a_400(client: httpx.AsyncClient) -> None:
    headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    response = await client.post("/tasks", json=SUM, headers=headers)
    assert response.status_code == 400


async def test_a_retry_with_the_same_key_and_body_answers_the_same_task_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await post(client, "k1")
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    task_id = first.json()["task_id"]
    await finished(backend_of(app), task_id)
    again = await post(client, "k1")
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["task_id"] == task_id
    assert again.json()["status"] == "completed"  # the task as it is now
    assert await held(client) == 1


@pytest.mark.parametrize(
    "same",
    [
        pytest.param(
            {"parameters": {"numbers": [1, 2, 3]}, "task_type": "compute_sum"}, id="key-order"
        ),
        pytest.param({**SUM, "priority": "normal"}, id="default-spelled-out"),
        pytest.param({**SUM, "parameters": {"numbers": [1.0, 2.0, 3.0]}}, id="1-as-1.0"),
    ],
)
async def test_bodies_are_compared_after_parsing(
    client: httpx.AsyncClient, same: dict[str, Any]
) -> None:
    first = await post(client, "k")
    again = await client.post(
        "/tasks",
        content=orjson.dumps(same, option=orjson.OPT_INDENT_2),  # spacing differs too
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["task_id"] == first.json()["task_id"]


async def test_a_key_reused_with_a_different_body_is_a_422(client: httpx.AsyncClient) -> None:
    await post(client, "k")
    other = await post(client, "k", {**SUM, "priority": "high"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == MISMATCH
    assert await held(client) == 1


async def test_an_invalid_or_refused_request_leaves_no_record(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_queue=1, concurrency=1, work_scale=1.0)
    async with client_for(app) as client:
        bad = await post(client, "k", {"task_type": "compute_sum", "parameters": {}})
        assert bad.status_code == 400
        too_large = await client.post(
            "/tasks", content=b" " * (1_048_576 + 1), headers={"Idempotency-Key": "k"}
        )
        assert too_large.status_code == 413  # the body limit holds before the key is marked
        blocker = (await post(client, None)).json()["task_id"]  # runs, or waits in the queue
        await post(client, None)  # fills the queue
        full = await post(client, "k")
        assert full.status_code == 503
        await client.delete(f"/tasks/{blocker}")
        created = await post(client, "k")  # the same key works: neither refusal kept it
        assert created.status_code == 202
        assert "idempotent-replayed" not in created.headers


def from_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://tw")


async def test_keys_are_scoped_to_the_client_address(app: FastAPI) -> None:
    async with (
        running(app),
        from_address(app, "192.0.2.1") as one,
        from_address(app, "192.0.2.2") as other,
    ):
        first = await post(one, "shared")
        second = await post(other, "shared")
    assert first.json()["task_id"] != second.json()["task_id"]
    assert "idempotent-replayed" not in second.headers


async def test_a_key_is_forgotten_after_its_ttl(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(idempotency_ttl_s=100, result_ttl_s=10_000)
    async with client_for(app) as client:
        first = await post(client, "k")
        clock.advance(99)
        assert (await post(client, "k")).headers["idempotent-replayed"] == "true"
        clock.advance(2)
        later = await post(client, "k")
    assert "idempotent-replayed" not in later.headers
    assert later.json()["task_id"] != first.json()["task_id"]


async def test_a_key_whose_task_expired_is_a_409_not_a_second_task(
    make_app: Callable[..., FastAPI], clock: FakeClock
) -> None:
    app = make_app(result_ttl_s=10)
    async with client_for(app) as client:
        task_id = (await post(client, "k")).json()["task_id"]
        await finished(backend_of(app), task_id)
        clock.advance(11)
        await app.state.cleanup.sweep()
        gone = await post(client, "k")
        assert gone.status_code == 409
        assert task_id in gone.json()["detail"]
        assert await held(client) == 0


async def test_a_replay_counts_against_the_rate_limit(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(rate_limit=2)) as client:
        assert (await post(client, "k")).status_code == 202
        assert (await post(client, "k")).status_code == 202
        assert (await post(client, "k")).status_code == 429


async def test_a_retry_while_the_first_is_still_being_handled_is_a_409(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    backend = backend_of(app)
    began, go_on = asyncio.Event(), asyncio.Event()
    begin = backend.begin_idempotent

    async def held_in_flight(*args: Any) -> Any:  # the first request holds the key, in flight
        found = await begin(*args)
        if not began.is_set():
            began.set()
            await go_on.wait()
        return found

    backend.begin_idempotent = held_in_flight  # type: ignore[method-assign]
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        first = asyncio.create_task(post(client, "busy"))
        async with asyncio.timeout(FAILSAFE_S):
            await began.wait()
        retry = await post(client, "busy")
        assert retry.status_code == 409
        assert "still being handled" in retry.json()["detail"]
        go_on.set()
        assert (await first).status_code == 202
        assert (await post(client, "busy")).headers["idempotent-replayed"] == "true"
        assert await held(client) == 1


async def test_a_first_request_whose_body_is_slow_to_arrive_becomes_the_retry_s_replay(
    make_app: Callable[..., FastAPI],
) -> None:
    # The key is marked once the body has arrived: a body slower than the mark lasts (60 s)
    # could otherwise let a retry in, and each would create a task.
    body = orjson.dumps(SUM)
    async with serve(make_app()) as url, httpx.AsyncClient(base_url=url) as client:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (
            "POST /tasks HTTP/1.1\r\nHost: tw\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: slow\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body[:10])  # the body is still on its way
        await writer.drain()
        retry = await post(client, "slow")
        assert retry.status_code == 202  # it came whole first: it is the first
        writer.write(body[10:])
        await writer.drain()
        async with asyncio.timeout(FAILSAFE_S):
            answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 202")
        assert b"idempotent-replayed: true" in answer.lower()
        assert retry.json()["task_id"].encode() in answer
        assert await held(client) == 1


async def test_twenty_concurrent_requests_with_one_key_create_one_task(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        answers = await asyncio.gather(*(post(client, "once") for _ in range(20)))
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {202, 409}
        assert len({a.json()["task_id"] for a in answers if a.status_code == 202}) == 1
        assert await held(client) == 1
