"""``/tasks`` (SPEC §1, §2, §6): the REST contract, in-process through the whole ASGI stack.

The fixtures ``app`` and ``client`` are in ``conftest.py``; streams (``?watch=true``, long-polls
that many clients wait on) are tested against a real server in ``tests/streams``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api import schemas
from service.model import TaskStatus
from tests.support import (
    FAILSAFE_S,
    Subscriptions,
    backend_of,
    bus_of,
    client_for,
    engine_of,
    expect_event,
    finished,
    serve,
)

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}
FAIL = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
UNKNOWN_ID = "0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    schemas.Problem.model_validate(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def submit(client: httpx.AsyncClient, body: dict[str, Any] = SUM) -> dict[str, Any]:
    response = await client.post("/tasks", json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def test_submit_answers_202_with_the_queued_task_and_its_location(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/tasks", json=SUM)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    task = response.json()
    schemas.Task.model_validate(task)
    assert uuid.UUID(task["task_id"]).version == 4
    assert response.headers["location"] == f"/tasks/{task['task_id']}"
    assert (task["status"], task["priority"], task["attempt"], task["progress"]) == (
        "queued",
        "normal",
        1,
        0,
    )
    assert task["parameters"] == {"numbers": [1.0, 2.0, 3.0]}
    assert task["result"] is None and task["error"] is None and task["started_at"] is None


async def test_get_answers_the_task_and_it_completes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    task = await submit(client)
    await finished(backend_of(app), task["task_id"])
    response = await client.get(f"/tasks/{task['task_id']}")
    assert response.status_code == 200
    done = response.json()
    assert (done["status"], done["result"], done["progress"], done["eta_s"]) == (
        "completed",
        {"sum": 6},
        100,
        None,
    )
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


async def test_failed_tasks_carry_their_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    task = await submit(client, FAIL)
    await finished(backend_of(app), task["task_id"])
    failed = (await client.get(f"/tasks/{task['task_id']}")).json()
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "TaskFailedError" and failed["error"]["message"]


async def test_long_poll_on_a_finished_task_answers_at_once(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(long_poll_max_s=3600)
    async with client_for(app) as client:
        task = await submit(client)
        await finished(backend_of(app), task["task_id"])
        async with asyncio.timeout(FAILSAFE_S):  # the long-poll's own timeout is an hour
            response = await client.get(
                f"/tasks/{task['task_id']}", params={"wait": "true", "timeout": 3600}
            )
    assert (response.status_code, response.json()["status"]) == (200, "completed")


async def test_long_poll_times_out_with_the_unchanged_task(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(work_scale=1.0, concurrency=1)
    async with client_for(app) as client:
        await submit(client)
        waiting = await submit(client)  # stays queued behind the first
        response = await client.get(
            f"/tasks/{waiting['task_id']}", params={"wait": 1, "timeout": 0.01}
        )
        assert response.status_code == 200
        assert response.json()["status"] == "queued"


@pytest.mark.parametrize("wait", ["true", "false"])
async def test_a_long_poll_timeout_over_the_configured_limit_is_400_with_the_field_error(
    make_app: Callable[..., FastAPI], wait: str
) -> None:
    # The routes are declared at import, before any settings: the handler checks the limit.
    app = make_app(long_poll_max_s=2.5)
    async with client_for(app) as client:
        task = await submit(client)
        await finished(backend_of(app), task["task_id"])
        subscriptions = Subscriptions(bus_of(app))
        path = f"/tasks/{task['task_id']}"
        response = await client.get(path, params={"wait": wait, "timeout": 2.51})
        body = assert_problem(response, 400)
        assert body["detail"] == "invalid timeout"
        assert body["errors"] == [
            {
                "in": "query",
                "field": "timeout",
                "type": "less_than_equal",
                "detail": "Input should be less than or equal to 2.5",
            }
        ]
        assert subscriptions.count == 0  # refused before it waited on anything
        at_the_limit = await client.get(path, params={"wait": wait, "timeout": 2.5})
        assert (at_the_limit.status_code, at_the_limit.json()["status"]) == (200, "completed")
        # The default limit, 10, is over this app's: the configured one is what counts.
        assert_problem(await client.get(path, params={"wait": wait, "timeout": 10}), 400)


async def test_list_is_a_json_array_newest_first_with_filters(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await submit(client)
    second = await submit(client, FAIL)
    third = await submit(
        client, {"task_type": "image_processing", "parameters": {"count": 1, "operation": "resize"}}
    )
    for task in (first, second, third):
        await finished(backend_of(app), task["task_id"])

    response = await client.get("/tasks")
    assert response.headers["content-type"] == "application/json"
    assert [t["task_id"] for t in response.json()] == [
        third["task_id"],
        second["task_id"],
        first["task_id"],
    ]

    async def ids(**params: Any) -> list[str]:
        return [t["task_id"] for t in (await client.get("/tasks", params=params)).json()]

    assert await ids(status="failed") == [second["task_id"]]
    assert await ids(status="failed,completed") == [
        third["task_id"],
        second["task_id"],
        first["task_id"],
    ]
    assert await ids(task_type="compute_sum") == [first["task_id"]]
    assert await ids(status="completed", task_type="image_processing") == [third["task_id"]]
    assert await ids(limit=1) == [third["task_id"]]
    assert await ids(status="queued") == []


async def test_list_as_ndjson(client: httpx.AsyncClient) -> None:
    tasks = [await submit(client) for _ in range(3)]
    response = await client.get("/tasks", headers={"accept": "application/x-ndjson"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = response.content.splitlines()
    assert response.content.endswith(b"\n")
    assert [orjson.loads(line)["task_id"] for line in lines] == [
        t["task_id"] for t in reversed(tasks)
    ]


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        pytest.param(None, "application/json", id="default"),
        pytest.param("application/x-ndjson;q=0.5, application/json", "application/json", id="q"),
        pytest.param("application/json;q=0, */*", "application/x-ndjson", id="json-refused"),
    ],
)
async def test_the_list_representation_follows_accept_and_says_it_varies(
    client: httpx.AsyncClient, accept: str | None, media_type: str
) -> None:
    await submit(client)
    response = await client.get("/tasks", headers={"accept": accept} if accept else {})
    assert response.headers["content-type"] == media_type
    assert response.headers["vary"] == "Accept"


async def test_a_long_list_is_one_valid_array(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(max_queue=1000)  # workers not started: all stay queued
    async with client_for(app) as client:
        engine = engine_of(app)
        await engine.close()
        for _ in range(600):
            await submit(client)
        listed = (await client.get("/tasks")).json()
        assert len(listed) == 600 == len({t["task_id"] for t in listed})
        assert (
            len(
                (
                    await client.get("/tasks", headers={"accept": "application/x-ndjson"})
                ).content.splitlines()
            )
            == 600
        )


async def test_cancel_a_queued_task(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(work_scale=1.0, concurrency=1)
    async with client_for(app) as client:
        await submit(client)
        queued = await submit(client)  # behind the first, which runs for seconds
        response = await client.delete(f"/tasks/{queued['task_id']}")
        assert response.status_code == 200
        cancelled = response.json()
        assert (cancelled["status"], cancelled["started_at"]) == ("cancelled", None)
        assert cancelled["finished_at"]
        assert (await client.get(f"/tasks/{queued['task_id']}")).json()["status"] == "cancelled"


async def test_cancel_a_processing_task_answers_once_cancelled(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(work_scale=1.0)
    async with client_for(app) as client:
        async with expect_event(bus_of(app), "task.processing") as processing:
            task = await submit(client)
        assert (await processing).task_id == task["task_id"]
        response = await client.delete(f"/tasks/{task['task_id']}")
        assert response.status_code == 200
        cancelled = response.json()
        assert (
            cancelled["status"] == "cancelled"
            and cancelled["finished_at"]
            and cancelled["started_at"]
        )


async def test_cancel_a_finished_task_is_409_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    task = await submit(client)
    await finished(backend_of(app), task["task_id"])
    before = (await client.get(f"/tasks/{task['task_id']}")).json()
    body = assert_problem(await client.delete(f"/tasks/{task['task_id']}"), 409)
    assert "completed" in body["detail"]
    assert (await client.get(f"/tasks/{task['task_id']}")).json() == before


async def test_retry_a_failed_task(app: FastAPI, client: httpx.AsyncClient) -> None:
    task = await submit(client, FAIL)
    await finished(backend_of(app), task["task_id"])
    response = await client.post(f"/tasks/{task['task_id']}/retry")
    assert response.status_code == 202
    assert response.headers["location"] == f"/tasks/{task['task_id']}"
    retried = response.json()
    assert (retried["status"], retried["attempt"], retried["error"]) == ("queued", 2, None)


async def test_retry_a_task_that_is_not_failed_or_cancelled_is_409(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    task = await submit(client)
    await finished(backend_of(app), task["task_id"])
    assert_problem(await client.post(f"/tasks/{task['task_id']}/retry"), 409)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/tasks/{UNKNOWN_ID}"),
        ("GET", f"/tasks/{UNKNOWN_ID}?wait=true"),
        ("DELETE", f"/tasks/{UNKNOWN_ID}"),
        ("POST", f"/tasks/{UNKNOWN_ID}/retry"),
    ],
)
async def test_unknown_tasks_are_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    assert_problem(await client.request(method, path), 404)


async def test_unknown_paths_are_404_and_wrong_methods_405(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nope"), 404)
    for path in ("/tasks/", "/healthz/", f"/tasks/{UNKNOWN_ID}/"):  # not redirected
        assert_problem(await client.get(path, headers={"host": "elsewhere.example"}), 404)
    response = await client.put("/tasks")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"  # every route of the path
    response = await client.post(f"/tasks/{UNKNOWN_ID}")
    assert response.headers["allow"] == "DELETE, GET, HEAD"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/tasks", 200, id="list"),
        pytest.param(f"/tasks/{UNKNOWN_ID}", 404, id="unknown-task"),
        pytest.param("/tasks/not-a-uuid", 400, id="bad-id"),
    ],
)
async def test_head_answers_like_get_without_a_body(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    got, head = await client.get(path), await client.head(path)
    assert (head.status_code, head.content) == (status, b"")
    assert got.status_code == status
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")


async def test_head_of_a_watch_answers_at_once_and_subscribes_to_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    subscriptions = Subscriptions(bus_of(app))
    await submit(client)
    response = await client.head("/tasks?watch=true")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert subscriptions.count == 0
    assert bus_of(app).subscriber_count == 0


BAD_BODIES: list[Any] = [
    pytest.param(b"{", "", id="malformed-json"),
    pytest.param(b"", "", id="empty-body"),
    pytest.param(b"[]", "", id="array-body"),
    pytest.param(b'"compute_sum"', "", id="string-body"),
    pytest.param(orjson.dumps({"parameters": {}}), "task_type", id="missing-task-type"),
    pytest.param(
        orjson.dumps({"task_type": "nope", "parameters": {}}), "task_type", id="unknown-task-type"
    ),
    pytest.param(orjson.dumps({"task_type": 3}), "task_type", id="task-type-not-a-string"),
    pytest.param(
        orjson.dumps({"task_type": "compute_sum", "parameters": []}),
        "parameters",
        id="parameters-not-an-object",
    ),
    pytest.param(orjson.dumps({"task_type": "compute_sum"}), "parameters", id="missing-parameters"),
    pytest.param(
        orjson.dumps({"task_type": "compute_sum", "parameters": {}}),
        "parameters.numbers",
        id="missing-parameter",
    ),
    pytest.param(
        orjson.dumps({"task_type": "compute_sum", "parameters": {"numbers": []}}),
        "parameters.numbers",
        id="invalid-parameter",
    ),
    pytest.param(
        orjson.dumps({"task_type": "compute_sum", "parameters": {"numbers": [1], "x": 1}}),
        "parameters.x",
        id="unknown-parameter",
    ),
    pytest.param(orjson.dumps({**SUM, "colour": "red"}), "colour", id="unknown-field"),
    pytest.param(orjson.dumps({**SUM, "priority": "urgent"}), "priority", id="bad-priority"),
    pytest.param(
        b'{"task_type": "compute_sum", "parameters": {"numbers": [NaN]}}',
        "parameters.numbers.0",
        id="nan",
    ),
    pytest.param(
        b'{"task_type": "compute_sum", "parameters": {"numbers": [1, 1e308]}}',
        "parameters.numbers.1",
        id="number-beyond-1e304",
    ),
]


@pytest.mark.parametrize(("content", "field"), BAD_BODIES)
async def test_bad_bodies_are_400_with_the_invalid_fields(
    client: httpx.AsyncClient, content: bytes, field: str
) -> None:
    response = await client.post(
        "/tasks", content=content, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert body["errors"], body
    assert field in {error["field"] for error in body["errors"]}
    assert all(error["in"] == "body" for error in body["errors"])


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/tasks", content=b"numbers=1", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 400)


BAD_QUERIES: list[Any] = [
    pytest.param("/tasks?limit=0", "limit", id="limit-0"),
    pytest.param("/tasks?limit=100001", "limit", id="limit-100001"),
    pytest.param("/tasks?limit=ten", "limit", id="limit-not-a-number"),
    pytest.param("/tasks?status=done", "status", id="unknown-status"),
    pytest.param("/tasks?status=queued,", "status", id="status-trailing-comma"),
    pytest.param("/tasks?task_type=nope", "task_type", id="unknown-task-type"),
    pytest.param(f"/tasks/{UNKNOWN_ID}?wait=perhaps", "wait", id="wait-not-a-boolean"),
    pytest.param(f"/tasks/{UNKNOWN_ID}?wait=true&timeout=0", "timeout", id="timeout-0"),
    pytest.param(f"/tasks/{UNKNOWN_ID}?wait=true&timeout=10.01", "timeout", id="timeout-over-max"),
    pytest.param(f"/tasks/{UNKNOWN_ID}?wait=true&timeout=inf", "timeout", id="timeout-inf"),
    pytest.param(
        f"/tasks/{UNKNOWN_ID}?wait=true&timeout=soon", "timeout", id="timeout-not-a-number"
    ),
    pytest.param("/tasks/not-a-uuid", "task_id", id="task-id-not-a-uuid"),
]


@pytest.mark.parametrize(("url", "field"), BAD_QUERIES)
async def test_bad_query_and_path_values_are_400(
    client: httpx.AsyncClient, url: str, field: str
) -> None:
    body = assert_problem(await client.get(url), 400)
    assert field in {error["field"] for error in body["errors"]}


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_ids_that_are_not_uuids_are_400_for_every_route(
    client: httpx.AsyncClient, method: str
) -> None:
    path = "/tasks/123" if method == "DELETE" else "/tasks/123/retry"
    assert_problem(await client.request(method, path), 400)


@pytest.mark.parametrize(("limit", "status"), [(1, 200), (100_000, 200)])
async def test_limit_edges_are_accepted(client: httpx.AsyncClient, limit: int, status: int) -> None:
    assert (await client.get("/tasks", params={"limit": limit})).status_code == status


async def test_the_101st_queued_task_is_503_with_retry_after(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(work_scale=1.0, concurrency=1, max_queue=100)
    async with client_for(app) as client:
        async with expect_event(bus_of(app), "task.processing") as processing:
            first = await submit(client)
        assert (await processing).task_id == first["task_id"]  # out of the queue, running
        for _ in range(100):
            await submit(client)
        response = await client.post("/tasks", json=SUM)
        body = assert_problem(response, 503)
        assert "100" in body["detail"]
        assert int(response.headers["retry-after"]) in range(1, 16)  # the running task's ETA
        counts = await backend_of(app).counts()
        assert (counts[TaskStatus.PROCESSING], counts[TaskStatus.QUEUED]) == (1, 100)
        assert sum(counts.values()) == 101


async def test_a_store_full_of_live_tasks_is_503(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(work_scale=1.0, max_tasks=3, concurrency=1)
    async with client_for(app) as client:
        for _ in range(3):
            await submit(client)
        response = await client.post("/tasks", json=SUM)
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("size", "status"), [(1024, 202), (1025, 413)])
async def test_body_limit_edge(make_app: Callable[..., FastAPI], size: int, status: int) -> None:
    app = make_app(max_body_bytes=1024)
    body = orjson.dumps({**SUM, "parameters": {"numbers": [1]}, "priority": "low"})
    padded = body[:-1] + b" " * (size - len(body)) + b"}"
    assert len(padded) == size
    async with client_for(app) as client:
        response = await client.post(
            "/tasks", content=padded, headers={"content-type": "application/json"}
        )
        assert response.status_code == status
        if status == 413:
            assert_problem(response, 413)


async def test_a_chunked_body_over_the_limit_is_413_while_reading(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(max_body_bytes=1024)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b" " * 512

    async with client_for(app) as client:
        response = await client.post(
            "/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413)
        assert sent <= 3  # refused at the third chunk, not after buffering all 100


async def test_an_unexpected_error_is_500_logged_with_the_request_id_never_shown(
    app: FastAPI,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise KeyError("secret internals")

    monkeypatch.setattr(engine_of(app), "submit", explode)
    logger = logging.getLogger("taskwire")
    logger.addHandler(caplog.handler)
    try:
        response = await client.post("/tasks", json=SUM, headers={"x-request-id": "trace-me-42"})
    finally:
        logger.removeHandler(caplog.handler)
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert body["request_id"] == "trace-me-42"
    record = next(r for r in caplog.records if r.name == "taskwire.errors")
    assert record.request_id == "trace-me-42"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "secret internals" in caplog.text


# Canonical task ids: each task has one URL ---------------------------------------------------

TASK_ROUTES = [
    pytest.param("GET", "/tasks/{}", id="get"),
    pytest.param("GET", "/tasks/{}?wait=true", id="long-poll"),
    pytest.param("DELETE", "/tasks/{}", id="cancel"),
    pytest.param("POST", "/tasks/{}/retry", id="retry"),
    pytest.param("GET", "/tasks/{}/events", id="events"),
    pytest.param("GET", "/tasks/{}/history", id="history"),
]
OTHER_SPELLINGS = [
    pytest.param(UNKNOWN_ID.upper(), id="upper-case"),
    pytest.param(UNKNOWN_ID.replace("-", ""), id="no-hyphens"),
    pytest.param("{" + UNKNOWN_ID + "}", id="braces"),
    pytest.param("urn:uuid:" + UNKNOWN_ID, id="urn"),
    pytest.param(UNKNOWN_ID + " ", id="trailing-space"),
    pytest.param(" " + UNKNOWN_ID, id="leading-space"),
    pytest.param(UNKNOWN_ID[:-1] + "g", id="not-hex"),
    pytest.param("nope", id="not-a-uuid"),
]


def assert_task_id_refused(response: httpx.Response, where: str = "path") -> None:
    body = assert_problem(response, 400)
    assert body["detail"] == "invalid task_id"
    [error] = body["errors"]
    assert (error["in"], error["field"], error["type"]) == (where, "task_id", "task_id")
    assert "lowercase" in error["detail"]


@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
@pytest.mark.parametrize(("method", "path"), TASK_ROUTES)
async def test_a_task_id_spelled_otherwise_than_the_server_writes_it_is_400(
    client: httpx.AsyncClient, method: str, path: str, spelling: str
) -> None:
    assert_task_id_refused(await client.request(method, path.format(spelling)))


@pytest.mark.parametrize(("method", "path"), TASK_ROUTES)
async def test_an_unknown_task_id_spelled_as_the_server_writes_it_is_404(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_problem(await client.request(method, path.format(UNKNOWN_ID)), 404)


async def test_a_task_is_found_by_its_own_spelling_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    task = await submit(client)
    await finished(backend_of(app), task["task_id"])
    assert (await client.get(f"/tasks/{task['task_id']}")).status_code == 200
    for spelling in (task["task_id"].upper(), task["task_id"].replace("-", "")):
        assert_task_id_refused(await client.get(f"/tasks/{spelling}"))
        assert_task_id_refused(await client.post(f"/tasks/{spelling}/retry"))


@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
async def test_an_events_filter_by_a_task_id_spelled_otherwise_is_400(
    client: httpx.AsyncClient, spelling: str
) -> None:
    response = await client.get("/events", params={"task_id": spelling})
    assert_task_id_refused(response, "query")


async def test_an_events_filter_by_an_empty_task_id_is_400(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client,
        client.stream("GET", "/events", params={"task_id": ""}) as response,
    ):
        assert response.status_code == 400, response.headers["content-type"]


async def test_the_openapi_document_states_the_task_id_pattern(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    described = {
        (method, path, parameter["in"]): parameter["schema"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "task_id"
    }
    assert set(described) >= {
        ("get", "/tasks/{task_id}", "path"),
        ("delete", "/tasks/{task_id}", "path"),
        ("post", "/tasks/{task_id}/retry", "path"),
        ("get", "/tasks/{task_id}/events", "path"),
        ("get", "/events", "query"),
    }
    patterns = {schema["pattern"] for schema in described.values()}
    assert patterns == {"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
    [pattern] = patterns
    assert re.fullmatch(pattern, str(uuid.uuid4()))
    assert not re.fullmatch(pattern, str(uuid.uuid4()).upper())
