"""API keys (``TASKWIRE_API_KEYS_FILE``): no task without a valid key, none of another's.

Streams run through a real uvicorn server, as a browser's EventSource would use them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from service.access import new_key
from tests.support import FAILSAFE_S, Subscriptions, backend_of, bus_of, finished, serve, sse

SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2]}}
ALICE, ALICE_LINE = new_key("alice")
BOB, BOB_LINE = new_key("bob")
OPS, OPS_LINE = new_key("ops", admin=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(f"# who may use Taskwire\n{ALICE_LINE}\n{BOB_LINE}\n\n{OPS_LINE}  # ops team\n")
    return path


@pytest.fixture
def make_keyed_app(make_app: Callable[..., FastAPI], keys_file: Path) -> Callable[..., FastAPI]:
    def make(**settings: Any) -> FastAPI:
        return make_app(api_keys_file=keys_file, **settings)

    return make


@pytest.fixture
async def live(
    make_keyed_app: Callable[..., FastAPI],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = make_keyed_app()
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=FAILSAFE_S) as client:
        yield app, client


async def submit(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await client.post("/tasks", json=SUM, headers=bearer(key))
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


# Who may come in


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer", id="no-key"),
        pytest.param("Bearer not-a-key", id="wrong-key"),
        pytest.param(f"Basic {ALICE}", id="other-scheme"),
        pytest.param(f"Bearer {ALICE}x", id="almost"),
        pytest.param(f"Bearer {ALICE[:-1]}", id="prefix"),
    ],
)
async def test_without_a_valid_key_every_api_route_is_a_401(
    live: tuple[FastAPI, httpx.AsyncClient], authorization: str | None
) -> None:
    _, client = live
    headers = {} if authorization is None else {"Authorization": authorization}
    task_id = (await submit(client, ALICE))["task_id"]
    for method, path in [
        ("POST", "/tasks"),
        ("GET", "/tasks"),
        ("GET", f"/tasks/{task_id}"),
        ("DELETE", f"/tasks/{task_id}"),
        ("POST", f"/tasks/{task_id}/retry"),
        ("GET", "/events"),
        ("GET", f"/tasks/{task_id}/events"),
        ("GET", "/task-types"),
        ("GET", "/stats"),
        ("GET", f"/tasks/{task_id}/history"),
        ("GET", "/whoami"),
    ]:
        response = await client.request(method, path, headers=headers, json=SUM)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == 'Bearer realm="taskwire"'
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_health_docs_the_document_the_ui_and_metrics_stay_open(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    for path in ("/healthz", "/docs", "/openapi.json", "/", "/metrics"):
        assert (await client.get(path)).status_code == 200, path


async def test_metrics_can_be_made_to_ask_for_a_key(
    make_keyed_app: Callable[..., FastAPI],
) -> None:
    app = make_keyed_app(metrics_key_required=True)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=bearer(BOB))).status_code == 200


def test_a_key_is_compared_with_every_line_in_constant_time(
    keys_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code path, not a timing: each line's digest goes through hmac.compare_digest, and
    # all of them are compared whichever matches (or none).
    from service import access

    compared: list[bytes] = []
    real = access.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", counting)
    keys = access.ApiKeys.load(keys_file)
    assert keys.identify(ALICE) == access.Client("alice")
    assert len(compared) == 3
    assert keys.identify("nope") is None
    assert len(compared) == 6


# Whose tasks


async def test_tasks_belong_to_the_key_that_submitted_them(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    task = await submit(client, ALICE)
    assert task["owner"] == "alice"
    assert list(task)[-1] == "owner"  # the last field


async def test_another_key_s_task_is_not_found_on_every_route(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    task_id = (await submit(client, ALICE))["task_id"]
    await finished(backend_of(app), task_id)
    unknown = "0b6f7fa4-05ab-4a3c-9d9c-6f9a2a0e5d11"
    for method, path in [
        ("GET", "/tasks/{}"),
        ("GET", "/tasks/{}?wait=true"),
        ("DELETE", "/tasks/{}"),
        ("POST", "/tasks/{}/retry"),
        ("GET", "/tasks/{}/events"),
    ]:
        theirs = await client.request(method, path.format(task_id), headers=bearer(BOB))
        missing = await client.request(method, path.format(unknown), headers=bearer(BOB))
        assert theirs.status_code == missing.status_code == 404, (method, path)
        # Word for word as if it did not exist (but for the id itself): no 403 that tells.
        assert theirs.json()["detail"] == missing.json()["detail"].replace(unknown, task_id)
    assert (await client.get(f"/tasks/{task_id}", headers=bearer(ALICE))).status_code == 200


async def test_an_admin_key_reaches_every_task(live: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = live
    task_id = (await submit(client, ALICE))["task_id"]
    await finished(backend_of(app), task_id)
    assert (await client.get(f"/tasks/{task_id}", headers=bearer(OPS))).status_code == 200
    assert (await client.post(f"/tasks/{task_id}/retry", headers=bearer(OPS))).status_code == 409
    listed = (await client.get("/tasks", headers=bearer(OPS))).json()
    assert [t["task_id"] for t in listed] == [task_id]


async def test_lists_hold_only_the_key_s_own_tasks(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    mine = [(await submit(client, BOB))["task_id"] for _ in range(2)]
    await submit(client, ALICE)
    listed = (await client.get("/tasks", headers=bearer(BOB))).json()
    assert sorted(t["task_id"] for t in listed) == sorted(mine)
    ndjson = await client.get("/tasks", headers={**bearer(BOB), "Accept": "application/x-ndjson"})
    lines = [orjson.loads(line) for line in ndjson.text.splitlines()]
    assert sorted(t["task_id"] for t in lines) == sorted(mine)
    everyone = (await client.get("/tasks", headers=bearer(OPS))).json()
    assert len(everyone) == 3


async def test_streams_and_their_replays_carry_only_the_key_s_own_events(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    bus = bus_of(app)
    start = bus.last_id
    alice_task = (await submit(client, ALICE))["task_id"]
    bob_task = (await submit(client, BOB))["task_id"]
    for task_id in (alice_task, bob_task):
        await finished(backend_of(app), task_id)
    # A replay from before both, then the live events, as Bob's key sees them.
    subscriptions = Subscriptions(bus)
    params = {"access_token": BOB}  # as a browser's EventSource sends it
    headers = {"Last-Event-ID": str(start)}
    async with client.stream("GET", "/events", params=params, headers=headers) as response:
        assert response.status_code == 200
        events = sse(response)
        await subscriptions.opened(1)
        later = (await submit(client, ALICE))["task_id"]
        bob_later = (await submit(client, BOB))["task_id"]
        seen: list[str] = []
        async with asyncio.timeout(FAILSAFE_S):
            async for event in events:
                if "data" in event and event.get("event", "").startswith("task."):
                    seen.append(orjson.loads(event["data"])["task_id"])
                    if seen[-1] == bob_later:
                        break
    assert set(seen) == {bob_task, bob_later}
    assert alice_task not in seen and later not in seen


async def test_a_watch_shows_only_the_key_s_own_tasks(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    await submit(client, ALICE)
    mine = (await submit(client, BOB))["task_id"]
    lines: list[dict[str, Any]] = []
    async with client.stream("GET", "/tasks?watch=true", headers=bearer(BOB)) as response:
        async with asyncio.timeout(FAILSAFE_S):
            async for line in response.aiter_lines():
                lines.append(orjson.loads(line))
                if lines[-1]["type"] == "synced":
                    break
    assert [(line["type"], line.get("task", {}).get("task_id")) for line in lines] == [
        ("snapshot", mine),
        ("synced", None),
    ]


async def test_the_access_token_works_only_on_the_event_streams(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    task_id = (await submit(client, BOB))["task_id"]
    assert (await client.get(f"/tasks/{task_id}", params={"access_token": BOB})).status_code == 401
    async with client.stream(
        "GET", f"/tasks/{task_id}/events", params={"access_token": BOB}
    ) as response:
        assert response.status_code == 200


# Limits per key


async def test_the_rate_limit_is_per_key_wherever_it_comes_from(
    make_keyed_app: Callable[..., FastAPI],
) -> None:
    app = make_keyed_app(rate_limit=3)
    async with app.router.lifespan_context(app):

        def from_address(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://tw")

        async with from_address("192.0.2.1") as one, from_address("192.0.2.2") as two:
            answers = [
                await (one if n % 2 else two).get("/tasks", headers=bearer(ALICE)) for n in range(4)
            ]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]
            assert answers[0].headers["ratelimit-policy"] == '"per-key";q=3;w=60'
            # Bob's quota is his own, from the same addresses.
            assert (await one.get("/tasks", headers=bearer(BOB))).status_code == 200
            # Failed authentications are counted per address: guessing is as slow as that.
            guesses = [
                (await two.get("/tasks", headers=bearer("guess"))).status_code for _ in range(4)
            ]
            assert guesses == [401, 401, 401, 429]
            assert (await one.get("/tasks", headers=bearer("guess"))).status_code == 401


@pytest.mark.parametrize("path", ["/stats", "/task-types", "/whoami"])
async def test_routes_free_for_a_key_still_count_guesses(
    make_keyed_app: Callable[..., FastAPI], path: str
) -> None:
    app = make_keyed_app(rate_limit=2)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://tw") as client,
    ):
        with_key = [(await client.get(path, headers=bearer(ALICE))).status_code for _ in range(3)]
        assert with_key == [200, 200, 200]  # not counted for a valid key
        guesses = [(await client.get(path, headers=bearer("guess"))).status_code for _ in range(3)]
        assert guesses == [401, 401, 429]


async def test_an_open_metrics_route_is_never_counted(
    make_keyed_app: Callable[..., FastAPI],
) -> None:
    app = make_keyed_app(rate_limit=1)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://tw") as client,
    ):
        assert [(await client.get("/metrics")).status_code for _ in range(3)] == [200] * 3


async def test_idempotency_keys_are_scoped_to_the_api_key(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    headers = {"Idempotency-Key": "same"}
    alice = await client.post("/tasks", json=SUM, headers={**headers, **bearer(ALICE)})
    bob = await client.post("/tasks", json=SUM, headers={**headers, **bearer(BOB)})
    again = await client.post("/tasks", json=SUM, headers={**headers, **bearer(ALICE)})
    assert alice.json()["task_id"] != bob.json()["task_id"]
    assert "idempotent-replayed" not in bob.headers
    assert again.json()["task_id"] == alice.json()["task_id"]


async def test_the_access_token_never_appears_in_a_log_line(
    live: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, client = live
    task_id = (await submit(client, BOB))["task_id"]
    await finished(backend_of(app), task_id)
    with caplog.at_level(logging.DEBUG, logger="taskwire"):
        async with client.stream(
            "GET", f"/tasks/{task_id}/events", params={"access_token": BOB, "x": "1"}
        ) as response:
            await response.aread()
        await client.get(f"/tasks/{task_id}/events", params={"access_token": "wrong-" + BOB})
    access = [r.getMessage() for r in caplog.records if r.name == "taskwire.access"]
    assert any("access_token=***" in line for line in access)  # as the README says
    assert all(BOB not in record.getMessage() for record in caplog.records)


# Off by default


async def test_whoami_names_the_key_a_request_carries(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    alice = await client.get("/whoami", headers=bearer(ALICE))
    ops = await client.get("/whoami", headers=bearer(OPS))
    assert alice.json() == {"keys": True, "name": "alice", "admin": False}
    assert ops.json() == {"keys": True, "name": "ops", "admin": True}


async def test_with_keys_off_nothing_asks_for_one_and_tasks_have_no_owner(
    make_app: Callable[..., FastAPI],
) -> None:
    async with serve(make_app()) as url, httpx.AsyncClient(base_url=url) as client:
        task = (await client.post("/tasks", json=SUM)).json()
        assert "owner" not in task
        assert (await client.get("/whoami")).json() == {"keys": False, "name": None, "admin": True}
        document = (await client.get("/openapi.json")).json()
    assert "securitySchemes" not in document["components"]
    assert "401" not in document["paths"]["/tasks"]["post"]["responses"]


async def test_the_openapi_document_declares_the_bearer_scheme_when_keys_are_on(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = live
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": "an API key"}
    assert document["paths"]["/tasks"]["post"]["security"] == [{"bearer": []}]
    events = document["paths"]["/events"]["get"]
    assert events["security"] == [{"bearer": []}, {"accessToken": []}]
    assert "401" in events["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]
