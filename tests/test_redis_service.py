"""Many processes, one service: Taskwire on Redis, as real processes on a real redis-server.

Waits are long-polls and event streams of the service itself (a process offers no other
event to await); each has a failsafe timeout.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from hashlib import sha1
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from service.backends.redis.backend import script_sources
from tests.cluster import Cluster, cluster
from tests.redis_server import redis_server
from tests.support import sse

SLOW = {"task_type": "unstable_task", "parameters": {"failure_rate": 0}}
FAILING = {"task_type": "unstable_task", "parameters": {"failure_rate": 1}}
SUM = {"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3]}}
FAILSAFE_S = 20.0
MISSING = "00000000-0000-4000-8000-000000000000"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def service(redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(redis_url, redis_prefix, tmp_path) as running:
        yield running


async def submit(client: httpx.AsyncClient, url: str, body: dict[str, Any] = SUM) -> str:
    response = await client.post(f"{url}/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def wait_for(
    client: httpx.AsyncClient, url: str, task_id: str, *statuses: str
) -> dict[str, Any]:
    """Follow the task's event stream on ``url`` until it has one of ``statuses``."""
    async with (
        asyncio.timeout(FAILSAFE_S),
        client.stream("GET", f"{url}/tasks/{task_id}/events") as response,
    ):
        assert response.status_code == 200
        async for event in sse(response):
            if "data" in event:
                task: dict[str, Any] = orjson.loads(event["data"])
                if task["status"] in statuses:
                    return task
    raise AssertionError(f"task {task_id} ended without reaching {statuses}")


async def stream_events(redis_url: str, prefix: str) -> list[dict[bytes, bytes]]:
    """Every entry of the service's event stream, straight from Redis."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(f"{{{prefix}}}:events")
    finally:
        await client.aclose()
    return [fields for _, fields in entries]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=FAILSAFE_S) as client:
        yield client


async def test_a_task_submitted_to_one_process_is_read_cancelled_and_retried_through_another(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    runner = service.api(TASKWIRE_WORK_SCALE="1").url
    api_only = service.api(TASKWIRE_WORKERS="false").url
    assert runner and api_only
    task_id = await submit(client, runner, SLOW)
    assert (await client.get(f"{api_only}/tasks/{task_id}")).json()["task_id"] == task_id
    await wait_for(client, api_only, task_id, "processing")
    # It runs in the other process: the cancel is answered once that process has stopped it.
    cancelled = await client.delete(f"{api_only}/tasks/{task_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    retried = await client.post(f"{api_only}/tasks/{task_id}/retry")
    assert (retried.status_code, retried.json()["attempt"]) == (202, 2)
    assert (await wait_for(client, api_only, task_id, "processing"))["attempt"] == 2
    assert (await client.delete(f"{runner}/tasks/{task_id}")).json()["status"] == "cancelled"
    listed = (await client.get(f"{api_only}/tasks")).json()
    assert [(t["task_id"], t["status"]) for t in listed] == [(task_id, "cancelled")]


async def test_a_stream_on_one_process_sees_every_event_in_order_and_resumes_on_another(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    a, b = service.api().url, service.api(TASKWIRE_WORKERS="false").url
    assert a and b
    async with client.stream("GET", f"{b}/events") as response:
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        assert "id" in await anext(events)  # the stream's position
        ids = [await submit(client, a) for _ in range(3)]
        seen: list[dict[str, str]] = []
        async with asyncio.timeout(FAILSAFE_S):
            async for event in events:
                if event.get("event", "").startswith("task."):
                    seen.append(event)
                if sum(e["event"] == "task.completed" for e in seen) == 3:
                    break
    assert [int(e["id"]) for e in seen] == sorted({int(e["id"]) for e in seen})
    names = {e["event"] for e in seen} - {"task.progress"}
    assert names == {"task.queued", "task.processing", "task.completed"}
    last_seen = seen[-1]["id"]
    later = await submit(client, b)  # while the client is away
    await wait_for(client, a, later, "completed")
    headers = {"Last-Event-ID": last_seen}
    async with client.stream("GET", f"{a}/events", headers=headers) as response:
        missed = []
        async with asyncio.timeout(FAILSAFE_S):
            async for event in sse(response):
                if event.get("event", "").startswith("task.") and event["event"] != "task.progress":
                    missed.append((event["event"], event["data"]))
                if len(missed) == 3:
                    break
    assert [name for name, _ in missed] == ["task.queued", "task.processing", "task.completed"]
    assert all(later in data for _, data in missed)
    assert later not in ids


async def test_the_rate_limit_holds_across_processes(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    urls = [service.api(TASKWIRE_RATE_LIMIT="10").url for _ in range(2)]
    answers = [(await client.get(f"{urls[n % 2]}/tasks")).status_code for n in range(30)]
    assert answers.count(200) == 10
    assert answers.count(429) == 20


async def test_requests_the_routes_count_are_limited_exactly_across_processes_too(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    # Submits and reads are counted by their own scripts (one round trip each); an invalid
    # submit, which never reaches Redis, is counted by the rate-limit layer after the fact.
    urls = [service.api(TASKWIRE_RATE_LIMIT="10", TASKWIRE_WORKERS="false").url for _ in range(2)]
    task_id = ""
    answers = []
    for n in range(30):
        url = urls[n % 2]
        match n % 3:
            case 0:
                response = await client.post(f"{url}/tasks", json=SUM)
                task_id = response.json().get("task_id", task_id)
            case 1:
                response = await client.get(f"{url}/tasks/{task_id or MISSING}")
            case _:
                response = await client.post(f"{url}/tasks", json={"task_type": "nope"})
        answers.append(response)
    statuses = [answer.status_code for answer in answers]
    assert statuses[:10] == [202, 200, 400] * 3 + [202]
    assert statuses[10:] == [429] * 20
    refusal = answers[-1]
    assert refusal.headers["content-type"] == "application/problem+json"
    assert int(refusal.headers["retry-after"]) > 0
    assert refusal.headers["ratelimit"].startswith('"per-ip";r=0;t=')
    assert "too many requests from this address" in refusal.json()["detail"]


async def test_a_submit_and_a_read_are_one_round_trip_to_redis_each_with_the_limiter_on(
    service: Cluster, client: httpx.AsyncClient, redis_url: str, redis_prefix: str
) -> None:
    url = service.api(TASKWIRE_WORKERS="false", TASKWIRE_RATE_LIMIT="1000").url
    task_id = await submit(client, url)
    await client.get(f"{url}/tasks/{task_id}")  # each script's first call also loads it
    names = {sha1(source.encode()).hexdigest(): name for name, source in script_sources().items()}
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    sent: Counter[str] = Counter()
    try:
        async with redis.monitor() as monitor, asyncio.timeout(FAILSAFE_S):
            for _ in range(3):
                assert (await client.get(f"{url}/tasks/{task_id}")).status_code == 200
                await submit(client, url)
            await redis.echo("end-of-the-requests")
            async for command in monitor.listen():
                words = command["command"].split()
                if words == ["ECHO", "end-of-the-requests"]:
                    break
                if command["client_type"] != "lua" and redis_prefix in command["command"]:
                    what = names.get(words[1], "?") if words[0] == "EVALSHA" else words[0]
                    sent[what] += 1
    finally:
        await redis.aclose()
    assert (sent["read"], sent["submit"]) == (3, 3), sent
    # Nothing else was sent for them: no count of its own, no plain read. (XREAD is the
    # process's event reader, once per batch of new events, whatever asked for them.)
    assert set(sent) <= {"read", "submit", "XREAD"}, sent


async def test_the_queue_cap_and_the_concurrency_hold_across_processes(
    service: Cluster, redis_url: str, redis_prefix: str, client: httpx.AsyncClient
) -> None:
    # 50 s and more a task: none of the first five ends while the burst is served, however
    # slow the machine (at 5 s, one did under load, and a queued task took its place).
    settings = {"TASKWIRE_WORK_SCALE": "10", "TASKWIRE_MAX_QUEUE": "100"}
    urls = [service.api(**settings).url for _ in range(2)]
    assert all(urls)
    running = [await submit(client, urls[n % 2], SLOW) for n in range(5)]
    for task_id in running:  # every place taken: from now on, each submit stays queued
        await wait_for(client, urls[0], task_id, "processing")
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=FAILSAFE_S, limits=limits) as burst:
        answers = await asyncio.gather(
            *(burst.post(f"{urls[n % 2]}/tasks", json=SLOW) for n in range(145))
        )
    statuses = [answer.status_code for answer in answers]
    assert (statuses.count(202), statuses.count(503)) == (100, 45)
    health = (await client.get(f"{urls[1]}/healthz")).json()
    assert (health["queued"], health["processing"]) == (100, 5), health
    # Never more than 5 at once, by every event the service recorded.
    now_running: set[str] = set()
    most = 0
    for fields in await stream_events(redis_url, redis_prefix):
        name, task_id = fields[b"n"], fields[b"t"]
        if name == b"task.processing":
            now_running.add(task_id.decode())
        elif name in (b"task.completed", b"task.failed", b"task.cancelled"):
            now_running.discard(task_id.decode())
        most = max(most, len(now_running))
    assert most == 5


async def test_gunicorn_runs_several_workers_that_share_the_state(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    url = service.api("gunicorn", WEB_CONCURRENCY="2").url
    assert url
    ids = []
    for _ in range(20):  # a new connection each time, so both workers take some
        async with httpx.AsyncClient(timeout=FAILSAFE_S) as fresh:
            ids.append(await submit(fresh, url))
    for task_id in ids:
        async with httpx.AsyncClient(timeout=FAILSAFE_S) as fresh:
            assert (await fresh.get(f"{url}/tasks/{task_id}")).status_code == 200
    assert "Booting worker" in service.processes[0].output()
    assert service.processes[0].output().count("Booting worker") == 2


async def test_a_killed_process_s_tasks_run_again_elsewhere_and_complete_once(
    service: Cluster, redis_url: str, redis_prefix: str, client: httpx.AsyncClient
) -> None:
    lease = {"TASKWIRE_LEASE": "1", "TASKWIRE_WORK_SCALE": "1"}  # 5 s: still running at the kill
    doomed = service.api(**lease)
    assert doomed.url
    ids = [await submit(client, doomed.url, SLOW) for _ in range(3)]
    for task_id in ids:
        await wait_for(client, doomed.url, task_id, "processing")
    survivor = service.api(**lease).url
    assert survivor
    killed_at = time.monotonic()
    doomed.kill()
    done = [await wait_for(client, survivor, task_id, "completed") for task_id in ids]
    assert {task["attempt"] for task in done} == {2}
    recovered_s = time.monotonic() - killed_at
    assert recovered_s < FAILSAFE_S
    completions = [
        fields[b"t"].decode()
        for fields in await stream_events(redis_url, redis_prefix)
        if fields[b"n"] == b"task.completed"
    ]
    assert sorted(completions) == sorted(ids)  # each exactly once


async def test_a_task_lost_twice_fails_with_worker_lost_error(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    lease = {"TASKWIRE_LEASE": "1", "TASKWIRE_WORK_SCALE": "1"}
    api = service.api(TASKWIRE_WORKERS="false", **lease).url  # reaps, never runs
    assert api
    first = service.worker(**lease)
    task_id = await submit(client, api, SLOW)
    await wait_for(client, api, task_id, "processing")
    first.kill()
    assert (await wait_for(client, api, task_id, "queued"))["attempt"] == 2
    second = service.worker(**lease)
    await wait_for(client, api, task_id, "processing")
    second.kill()
    failed = await wait_for(client, api, task_id, "failed")
    assert failed["error"]["type"] == "WorkerLostError"
    assert failed["attempt"] == 2


async def test_queued_tasks_survive_every_process_restarting(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    api = service.api(TASKWIRE_WORKERS="false")
    assert api.url
    ids = [await submit(client, api.url) for _ in range(5)]
    assert api.stop() in (0, -signal.SIGTERM)
    worker = service.worker()
    again = service.api(TASKWIRE_WORKERS="false").url
    assert again
    for task_id in ids:
        assert (await wait_for(client, again, task_id, "completed"))["result"] == {"sum": 6}
    assert worker.stop() == 0
    assert "worker stopped" in worker.output() or worker.output() == ""


async def test_running_tasks_go_back_to_the_queue_when_their_process_stops(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    stopping = service.api(TASKWIRE_WORK_SCALE="1")
    api = service.api(TASKWIRE_WORKERS="false").url
    assert stopping.url and api
    task_id = await submit(client, api, SLOW)
    await wait_for(client, api, task_id, "processing")
    assert stopping.stop() in (0, -signal.SIGTERM)
    requeued = (await client.get(f"{api}/tasks/{task_id}")).json()
    assert (requeued["status"], requeued["attempt"]) == ("queued", 2)


async def test_redis_going_away_is_a_503_and_nothing_is_lost_when_it_returns(
    tmp_path: Path, redis_prefix: str, client: httpx.AsyncClient
) -> None:
    with (
        redis_server(tmp_path / "redis", aof=True) as redis,
        cluster(redis.url, redis_prefix, tmp_path) as service,
    ):
        url = service.api(TASKWIRE_WORKERS="false").url
        runner = service.api().url
        assert url and runner
        finished = await submit(client, runner)
        await wait_for(client, url, finished, "completed")
        async with client.stream("GET", f"{url}/events") as response:
            events = sse(response)
            assert await anext(events) == {"retry": "3000"}
            start = int((await anext(events))["id"])
            redis.stop()
            began = time.monotonic()
            down = await client.post(f"{url}/tasks", json=SUM)
            assert down.status_code == 503, down.text
            assert time.monotonic() - began < 2.0
            assert down.headers["content-type"] == "application/problem+json"
            assert "retry-after" in down.headers
            health = await client.get(f"{url}/healthz")
            assert health.status_code == 503
            assert "redis" in health.json()["detail"]
            # Streams that start from the backend's state: a 503 before the answer starts,
            # not a 200 that breaks off after its first bytes.
            for path in ("/tasks", "/tasks?watch=true", f"/events?last_event_id={start}"):
                refused = await client.get(f"{url}{path}")
                assert refused.status_code == 503, (path, refused.text)
                assert refused.headers["content-type"] == "application/problem+json"
            redis.start()
            after = await submit(client, url)
            await wait_for(client, url, after, "completed")
            got = []
            async with asyncio.timeout(FAILSAFE_S):
                async for event in events:
                    if event.get("event", "").startswith("task."):
                        got.append(int(event["id"]))
                    if len(got) == 3:
                        break
        assert got == [start + 1, start + 2, start + 3]  # resumed, without a gap
        kept = (await client.get(f"{url}/tasks/{finished}")).json()
        assert kept["status"] == "completed"


async def test_one_idempotency_key_creates_one_task_across_processes(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    urls = [service.api().url for _ in range(2)]
    assert all(urls)
    headers = {"Idempotency-Key": "once-across-processes"}
    answers = await asyncio.gather(
        *(client.post(f"{urls[n % 2]}/tasks", json=SUM, headers=headers) for n in range(20))
    )
    assert {answer.status_code for answer in answers} <= {202, 409}
    created = {answer.json()["task_id"] for answer in answers if answer.status_code == 202}
    assert len(created) == 1
    replay = await client.post(f"{urls[1]}/tasks", json=SUM, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["task_id"] in created
    assert (await client.get(f"{urls[0]}/healthz")).json()["tasks"] == 1


def metric(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


async def test_a_scrape_of_any_gunicorn_worker_reports_the_whole_group_once(
    service: Cluster,
) -> None:
    group = service.api("gunicorn", WEB_CONCURRENCY="2")
    other = service.api(TASKWIRE_WORKERS="false")  # a second process group, API only
    assert group.url and other.url
    ids = []
    for _ in range(12):  # a new connection each time, so both workers take some
        async with httpx.AsyncClient(base_url=group.url, timeout=FAILSAFE_S) as fresh:
            ids.append(await submit(fresh, group.url))
    async with httpx.AsyncClient(timeout=FAILSAFE_S) as client:
        for task_id in ids:
            await wait_for(client, group.url, task_id, "completed")
        scrapes = []
        for _ in range(6):  # each scrape answered by whichever worker takes it
            async with httpx.AsyncClient(timeout=FAILSAFE_S) as fresh:
                scrapes.append((await fresh.get(f"{group.url}/metrics")).text)
        elsewhere = (await client.get(f"{other.url}/metrics")).text
    for text in scrapes:
        finished = metric(text, 'taskwire_tasks_finished_total{status="completed"')
        assert finished == [
            'taskwire_tasks_finished_total{status="completed",task_type="compute_sum"} 12.0'
        ]
        posts = metric(text, 'taskwire_http_request_duration_seconds_count{method="POST"')
        assert posts == [
            'taskwire_http_request_duration_seconds_count{method="POST",route="/tasks",'
            'status="2xx"} 12.0'
        ]
    # The service's own figures come from one process group of the service, not each.
    exported = [text for text in [scrapes[0], elsewhere] if metric(text, "taskwire_tasks{")]
    assert len(exported) == 1
    assert 'taskwire_tasks{status="completed"} 12.0' in exported[0]
    exporters = [metric(text, "taskwire_metrics_exporter ") for text in [scrapes[0], elsewhere]]
    assert sorted(exporters) == [
        ["taskwire_metrics_exporter 0.0"],
        ["taskwire_metrics_exporter 1.0"],
    ]


async def test_a_position_beyond_any_event_id_is_a_resync_on_redis_too(
    service: Cluster, client: httpx.AsyncClient
) -> None:
    # Redis cannot name a stream id that large: asked for one, a read failed with a 500.
    url = service.api().url
    assert url
    task_id = await submit(client, url)
    await wait_for(client, url, task_id, "completed")
    beyond = "9" * 34
    answer = await client.get(f"{url}/tasks/{task_id}/events?last_event_id={beyond}")
    assert answer.status_code == 200 and "task.completed" in answer.text
    async with client.stream("GET", f"{url}/events?last_event_id={beyond}") as response:
        assert response.status_code == 200
        events = sse(response)
        assert await anext(events) == {"retry": "3000"}
        assert (await anext(events))["event"] == "resync"
