"""The Redis backend: what sharing the state of the service through Redis costs, and buys.

Each measurement starts a redis-server of its own (no persistence, like the memory backend)
and one or two Taskwire processes on it. The redis-server is part of the service under test,
so it is pinned to the server CPU with them; clients run on the other CPU, as everywhere here.

- ``throughput``: POST and GET /tasks, memory vs Redis with one process vs Redis with two
  API processes, side by side as in ``bench/http.py``, with each service's CPU time.
- ``calls``: Redis commands per request (sent, and run inside scripts), and Redis's time.
- ``latency``: an event's lag from its stamp to an SSE client of another process, unloaded.
- ``fanout``: 1000 SSE subscribers over two processes, every event to every one.
- ``longpoll``: 1000 long-polls on one process woken by a cancel through the other.
- ``recovery``: a process killed with its tasks running; how soon they run again elsewhere.
- ``where_time_goes``: py-spy on a Redis-backed process, redis-py as a group of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import profile
from bench.common import (
    PYTHON,
    QUIET,
    ROOT,
    SERVER_CPUS,
    Server,
    cpu_s,
    free_port,
    median,
    percentile,
    pin_to_client_cpus,
    request,
    serve,
    stop,
    timestamp,
)
from bench.fanout import Subscriber, _until_done, event_time
from bench.http import BODY, HIGH_LIMIT, NO_LIMIT, a_task_id, drained, paired, wrk_all
from bench.longpoll import Waiter
from bench.store import health
from service.backends.redis.backend import script_sources

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PREFIX = "bench"
"""Every service here has a redis-server of its own; the prefix only names its keys."""
HERE = Path(__file__).parent

STREAMING = {
    "TASKWIRE_RATE_LIMIT": "0",
    "TASKWIRE_WORK_SCALE": "0.02",
    "TASKWIRE_MAX_QUEUE": "10000",
    "TASKWIRE_MAX_STREAMS_PER_CLIENT": "100000",  # every subscriber is 127.0.0.1
}
"""As in ``bench/fanout.py``: tasks of about 0.1 s, each with a few progress events."""
SUM_4 = orjson.dumps(BODY)
SUM_100 = orjson.dumps({"task_type": "compute_sum", "parameters": {"numbers": list(range(100))}})
API_ONLY = {"TASKWIRE_WORKERS": "false"}


def _pin_to_server_cpus() -> None:
    os.sched_setaffinity(0, SERVER_CPUS)


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def settings(self) -> dict[str, str]:
        """What makes a Taskwire process one of the service on this Redis."""
        return {"TASKWIRE_BACKEND": self.url, "TASKWIRE_REDIS_PREFIX": PREFIX}

    @staticmethod
    def key(name: str) -> str:
        return f"{{{PREFIX}}}:{name}"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free port in a temporary folder, on the server CPU, until the block
    ends. Nothing is persisted: the memory backend it is compared with keeps nothing either."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="taskwire-bench-redis-") as directory:
        command = [
            REDIS_SERVER,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", directory,
            "--save", "",
            "--appendonly", "no",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pin_to_server_cpus,
        )
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start")
                time.sleep(0.01)  # another process: nothing to wait on
            yield RedisServer(port, process.pid)
        finally:
            stop(process)


def _answers(port: int) -> bool:
    try:
        with contextlib.closing(Client(port)) as client:
            return bool(client("PING") == b"PONG")
    except OSError:
        return False


class Client:
    """Just enough of RESP2 for the bench's own few commands, and to read MONITOR."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        host, local_port = self.sock.getsockname()[:2]
        self.address = f"{host}:{local_port}".encode()

    def __call__(self, *args: object) -> Any:
        parts = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
        self.sock.sendall(
            b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        )
        return self.reply()

    def reply(self) -> Any:
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        match kind:
            case b"+":
                return rest
            case b"-":
                raise RuntimeError(rest.decode())
            case b":":
                return int(rest)
            case b"$":
                return None if int(rest) < 0 else self.file.read(int(rest) + 2)[:-2]
            case b"*":
                return None if int(rest) < 0 else [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"not a RESP reply: {line!r}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# Throughput


@dataclass(frozen=True)
class Service:
    """One Taskwire service: its processes, and its redis-server if it has one."""

    servers: list[Server]
    redis: RedisServer | None = None

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds used so far by its Taskwire processes, and by its redis-server."""
        taskwire = sum(cpu_s(server.pid) for server in self.servers)
        return taskwire, cpu_s(self.redis.pid) if self.redis else 0.0


MEMORY, ONE, TWO = "memory, 1 process", "Redis, 1 process", "Redis, 2 processes"
KINDS = ("post", "get")


def throughput(rounds: int = 5, seconds: float = 4, connections: int = 64) -> dict[str, Any]:
    """Requests/s of POST and GET /tasks for each service, all loaded at once, and each one's
    CPU time (Taskwire processes and redis-server) over the round.

    Every process of every service shares the one server CPU, and the scheduler shares it by
    process, not by service: a service of three processes gets more of it than one of one. So
    the ratios compare cost, requests per CPU-second of the whole service, round by round;
    the requests/s are what each got while sharing. A POST round's CPU time runs until the
    workers have caught up, so a POST's cost includes running its task."""
    with contextlib.ExitStack() as stack:

        def on_redis(processes: int) -> Service:
            redis = stack.enter_context(redis_server())
            env = {**HIGH_LIMIT, **redis.settings()}
            return Service([stack.enter_context(serve(**env)) for _ in range(processes)], redis)

        services = {
            MEMORY: Service([stack.enter_context(serve(**HIGH_LIMIT))]),
            ONE: on_redis(1),
            TWO: on_redis(2),
        }
        # Each process has a wrk of its own; a service's connections are split among them.
        loads = {
            f"{name}/{i}": (name, server, connections // len(service.servers))
            for name, service in services.items()
            for i, server in enumerate(service.servers)
        }
        reads = {load: f"{s.url}/tasks/{a_task_id(s)}" for load, (_, s, _) in loads.items()}
        posts = {load: f"{s.url}/tasks" for load, (_, s, _) in loads.items()}
        per_load = {load: c for load, (_, _, c) in loads.items()}
        series = ("rps", "per_cpu_s", "cpu_us", "redis_share", "cpu_share")
        samples: dict[str, dict[str, dict[str, list[float]]]] = {
            key: {name: {kind: [] for kind in KINDS} for name in services} for key in series
        }
        for _ in range(rounds):
            for kind in KINDS:
                before = {name: service.cpu_s() for name, service in services.items()}
                started = time.monotonic()
                rps = wrk_all(posts if kind == "post" else reads, seconds, per_load, kind == "post")
                for service in services.values():
                    drained(service.servers[0])  # the service's counts: any process will do
                elapsed = time.monotonic() - started
                for name, service in services.items():
                    taskwire, redis = (
                        b - a for a, b in zip(before[name], service.cpu_s(), strict=True)
                    )
                    total = sum(r for load, r in rps.items() if loads[load][0] == name)
                    requests = total * seconds
                    sample = samples["rps"], samples["per_cpu_s"], samples["cpu_us"]
                    sample[0][name][kind].append(total)
                    sample[1][name][kind].append(requests / (taskwire + redis))
                    sample[2][name][kind].append((taskwire + redis) / requests * 1e6)
                    samples["redis_share"][name][kind].append(redis / taskwire)
                    samples["cpu_share"][name][kind].append((taskwire + redis) / elapsed)
    medians = {
        key: {name: {kind: median(v) for kind, v in by_kind.items()} for name, by_kind in s.items()}
        for key, s in samples.items()
    }
    return {
        **medians,
        "samples": samples,
        "ratio": {  # cost: requests per CPU-second, paired round by round
            name: {kind: paired(samples["per_cpu_s"], name, MEMORY, kind) for kind in KINDS}
            for name in (ONE, TWO)
        },
        "rps_ratio": {  # what each served while sharing the CPU
            name: {kind: paired(samples["rps"], name, MEMORY, kind) for kind in KINDS}
            for name in (ONE, TWO)
        },
        "two_vs_one": {kind: paired(samples["per_cpu_s"], TWO, ONE, kind) for kind in KINDS},
    }


# Redis calls per request


def script_names() -> dict[bytes, str]:
    """Each Lua script's SHA1 (what EVALSHA names) to its name, as the backend loads them."""
    return {
        hashlib.sha1(source.encode()).hexdigest().encode(): name
        for name, source in script_sources().items()
    }


class Monitor(threading.Thread):
    """Counts what Redis runs, as MONITOR shows it, until ``stop``: what clients sent (the
    round trips, EVALSHA by script) apart from what scripts ran, leaving out ``ignored``."""

    END = b"bench:monitor:end"

    def __init__(self, port: int, ignored: bytes) -> None:
        super().__init__(daemon=True)
        self._client = Client(port)
        self._ignored = ignored
        self._scripts = script_names()
        self.sent: Counter[str] = Counter()
        self.in_scripts: Counter[str] = Counter()
        self._client("MONITOR")
        self.start()

    def run(self) -> None:
        # +1764559560.742452 [0 127.0.0.1:45678] "EVALSHA" "<sha>" "1" ...  ([0 lua] for scripts)
        for line in self._client.file:
            source, _, command = line.partition(b"] ")
            source = source.rpartition(b" ")[2]
            words = command.split(b'"', 4)  # the command's name is words[1], its first arg [3]
            if len(words) < 3:
                continue  # not a command line
            name = words[1].decode().lower()
            if source == self._ignored:
                if self.END in command:
                    return
            elif source == b"lua":
                self.in_scripts[name] += 1
            elif name == "evalsha" and len(words) > 3:
                self.sent[f"evalsha {self._scripts.get(words[3], words[3][:8].decode())}"] += 1
            else:
                self.sent[name] += 1

    def stop(self, control: Client) -> None:
        control("ECHO", self.END)
        self.join(timeout=60)
        self._client.close()


OWN_COMMANDS = {"config|resetstat", "info", "echo", "hgetall", "ping"}
"""The bench's own commands (HGETALL: its wait for the workers; Taskwire sends one only for
/healthz, which is not asked during a count)."""


def commandstats(control: Client) -> dict[str, tuple[int, int]]:
    """(calls, µs) by command, since the last CONFIG RESETSTAT, scripts' own calls included."""
    stats = {}
    for line in control("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.removeprefix("cmdstat_").partition(":")
            values = dict(field.split("=") for field in fields.split(","))
            if name not in OWN_COMMANDS:
                stats[name] = (int(values["calls"]), int(values["usec"]))
    return stats


async def _many(server: Server, count: int, method: str, path: str, body: bytes = b"") -> None:
    """``count`` requests, 16 at a time; each must succeed."""
    slots = asyncio.Semaphore(16)

    async def one() -> None:
        async with slots:
            status, answer = await request(server.host, server.port, method, path, body)
            assert status < 300, (status, answer)

    await asyncio.gather(*(one() for _ in range(count)))


@contextlib.contextmanager
def worker(**env: str) -> Iterator[int]:
    """A worker process (``python -m service.worker``: no HTTP) on the server CPU."""
    process = subprocess.Popen(
        [PYTHON, "-m", "service.worker"],
        cwd=ROOT,
        env={**os.environ, **QUIET, **env},
        preexec_fn=_pin_to_server_cpus,
    )
    try:
        yield process.pid
    finally:
        stop(process)


async def calls(requests: int = 1000) -> dict[str, Any]:
    """Redis commands per request on the hot paths, with the limiter on and off.

    An API-only process takes ``requests`` POSTs, then as many GETs of one task; then a worker
    process runs the tasks. Each phase is counted twice: once by CONFIG RESETSTAT and INFO
    commandstats (calls and µs by command, which count a script's own calls too, and
    redis-server's CPU time), once by MONITOR (which tells what clients sent from what scripts
    ran, and which script each EVALSHA ran), as MONITOR slows Redis down."""
    results: dict[str, Any] = {"requests": requests}
    for setting, limits in (("limiter on", HIGH_LIMIT), ("limiter off", NO_LIMIT)):
        with (
            redis_server() as redis,
            contextlib.closing(Client(redis.port)) as control,
            serve(**limits, **redis.settings(), **API_ONLY) as api,
        ):
            results[setting] = await _count(redis, control, api, requests, limits)
    return results


async def _count(
    redis: RedisServer, control: Client, api: Server, requests: int, limits: dict[str, str]
) -> dict[str, dict[str, Any]]:
    _, created = await request(api.host, api.port, "POST", "/tasks", SUM_4)
    read = f"/tasks/{orjson.loads(created)['task_id']}"
    counted: dict[str, dict[str, Any]] = {}
    for monitored in (False, True):
        for phase in ("post", "get", "run"):
            monitor = Monitor(redis.port, control.address) if monitored else None
            control("CONFIG", "RESETSTAT")
            before = cpu_s(redis.pid)
            if phase == "post":
                await _many(api, requests, "POST", "/tasks", SUM_4)
            elif phase == "get":
                await _many(api, requests, "GET", read)
            else:
                with worker(**limits, **redis.settings()):
                    await _until_completed(control, (1 + monitored) * requests + 1)
            if monitor is None:
                redis_cpu = cpu_s(redis.pid) - before
                stats = sorted(commandstats(control).items(), key=lambda item: -item[1][1])
                counted[phase] = {
                    "stats": {
                        n: {"calls": c / requests, "usec": us / requests} for n, (c, us) in stats
                    },
                    "redis_cpu_us": redis_cpu / requests * 1e6,
                }
            else:
                monitor.stop(control)
                counted[phase]["sent"] = {n: c / requests for n, c in monitor.sent.most_common()}
                counted[phase]["in_scripts"] = {
                    n: c / requests for n, c in monitor.in_scripts.most_common()
                }
    return counted


async def _until_completed(control: Client, count: int) -> None:
    key = RedisServer.key("counts")
    deadline = time.monotonic() + 60
    while True:  # other processes: nothing to wait on but Redis's count
        counts = control("HGETALL", key)
        if int(dict(zip(counts[::2], counts[1::2], strict=True)).get(b"completed", 0)) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not complete {count} tasks")
        await asyncio.sleep(0.02)


# Streams across processes


@contextlib.contextmanager
def two_processes(b: dict[str, str], **settings: str) -> Iterator[tuple[Server, Server]]:
    """A Redis service of two processes, A and B (B's settings with ``b`` on top)."""
    with (
        redis_server() as redis,
        serve(**settings, **redis.settings()) as a,
        serve(**settings, **redis.settings(), **b) as b_server,
    ):
        yield a, b_server


async def _submit_every(server: Server, tasks: int, every_s: float) -> None:
    for _ in range(tasks):
        status, _ = await request(server.host, server.port, "POST", "/tasks", SUM_100)
        assert status == 202, status
        await asyncio.sleep(every_s)


def _lags(subscriber: Subscriber, stamps: dict[int, float]) -> list[float]:
    return [(t - stamps[e]) * 1000 for e, t in subscriber.received if e in stamps]


def _stamps(subscriber: Subscriber) -> dict[int, float]:
    return {
        event_id: stamp
        for event_id, (name, data) in subscriber.data.items()
        if (stamp := event_time(name, data)) is not None
    }


def _spread(lags: list[float]) -> dict[str, float]:
    if not lags:
        return dict.fromkeys(("lag_p50_ms", "lag_p99_ms", "lag_max_ms"), math.inf)
    return {
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags),
    }


async def _follow(
    submit_to: Server, watched: dict[str, Server], tasks: int, every_s: float
) -> dict[str, Any]:
    """One SSE subscriber per watched process while ``tasks`` are submitted; lags by name."""
    subscribers = {name: Subscriber() for name in watched}
    readies = {name: asyncio.Event() for name in watched}
    running = [
        asyncio.create_task(subscribers[name].run(server, readies[name], keep_data=True))
        for name, server in watched.items()
    ]
    await asyncio.gather(*(ready.wait() for ready in readies.values()))
    for server in set(watched.values()):
        await _until_subscribed(server, list(watched.values()).count(server))
    await _submit_every(submit_to, tasks, every_s)
    for subscriber in subscribers.values():
        await _until_done(subscriber, tasks)
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    return {
        name: {"events": len(s.received), **_spread(_lags(s, _stamps(s)))}
        for name, s in subscribers.items()
    }


async def latency(tasks: int = 50, submit_every_s: float = 0.05) -> dict[str, Any]:
    """Tasks submitted to A, which runs them; one SSE subscriber on B (API only), one on A.
    Then the same on one memory process, the floor."""
    with two_processes(API_ONLY, **STREAMING) as (a, b):
        redis = await _follow(a, {"B": b, "A": a}, tasks, submit_every_s)
    with serve(**STREAMING) as memory:
        floor = await _follow(memory, {"memory": memory}, tasks, submit_every_s)
    return {"tasks": tasks, **redis["B"], "same_process": redis["A"], "memory": floor["memory"]}


async def fanout(
    subscribers: int = 1000, tasks: int = 50, submit_every_s: float = 0.05
) -> dict[str, Any]:
    """As ``bench/fanout.py``, over two processes: half the subscribers on A, which takes the
    tasks and runs them, half on B (API only)."""
    with two_processes(API_ONLY, **STREAMING) as (a, b):
        reference = Subscriber()
        placed = [(a if i < subscribers // 2 else b, Subscriber()) for i in range(subscribers)]
        readies = [asyncio.Event() for _ in range(subscribers + 1)]
        running = [asyncio.create_task(reference.run(a, readies[0], keep_data=True))]
        running += [
            asyncio.create_task(c.run(server, r))
            for (server, c), r in zip(placed, readies[1:], strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        await _until_subscribed(a, subscribers // 2 + 1)
        await _until_subscribed(b, subscribers - subscribers // 2)
        started = time.monotonic()
        await _submit_every(a, tasks, submit_every_s)
        await _until_done(reference, tasks)
        expected = [event_id for event_id, _ in reference.received]
        await _until_received([c for _, c in placed], len(expected))
        elapsed = time.monotonic() - started
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    stamps = _stamps(reference)
    by_process = {}
    for name, server in (("A", a), ("B", b)):
        clients = [c for s, c in placed if s is server]
        by_process[name] = {
            "subscribers": len(clients),
            "complete_subscribers": sum(
                1 for c in clients if [e for e, _ in c.received] == expected
            ),
            **_spread([lag for c in clients for lag in _lags(c, stamps)]),
        }
    clients = [c for _, c in placed]
    return {
        "subscribers": subscribers,
        "tasks": tasks,
        "events": len(expected),
        "deliveries": sum(len(c.received) for c in clients),
        "complete_subscribers": sum(p["complete_subscribers"] for p in by_process.values()),
        **_spread([lag for c in clients for lag in _lags(c, stamps)]),
        "by_process": by_process,
        "seconds": elapsed,
    }


async def _until_received(clients: list[Subscriber], count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # other processes' progress: no event here to wait on
        if all(len(c.received) >= count for c in clients):
            return
        await asyncio.sleep(0.05)


async def longpoll(waiters: int = 1000) -> dict[str, Any]:
    """As ``bench/longpoll.py``, over two processes: the waiters on B, the cancel through A.
    No process runs tasks, so the task stays queued until the cancel."""
    settings = {"TASKWIRE_RATE_LIMIT": "0", "TASKWIRE_LONG_POLL_MAX": "120", **API_ONLY}
    body = orjson.dumps({"task_type": "unstable_task", "parameters": {"failure_rate": 0}})
    loop = asyncio.get_running_loop()
    with two_processes({}, **settings) as (a, b):
        _, created = await request(a.host, a.port, "POST", "/tasks", body)
        task_id = orjson.loads(created)["task_id"]
        path = f"/tasks/{task_id}?wait=true&timeout=120"
        opened = [
            await loop.create_connection(lambda: Waiter(path), b.host, b.port)
            for _ in range(waiters)
        ]
        protocols = [protocol for _, protocol in opened]
        await _until_subscribed(b, waiters)
        _, cancelled = await request(a.host, a.port, "DELETE", f"/tasks/{task_id}")
        woken_at = timestamp(orjson.loads(cancelled)["finished_at"])
        await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), timeout=60)

    woken = [p for p in protocols if p.status == "cancelled" and p.arrived is not None]
    return {
        "waiters": waiters,
        "woken": len(woken),
        "answers": dict(Counter(str(p.status) for p in protocols).most_common()),
        **_spread([(p.arrived - woken_at) * 1000 for p in woken if p.arrived is not None]),
    }


# Recovery


async def recovery(tasks: int = 3, lease_s: float = 2, work_scale: float = 0.3) -> dict[str, Any]:
    """A runs ``tasks`` (about 6 s each at 0.3); B starts once they are all processing on A, with an
    SSE subscriber; A is killed (SIGKILL). Per task: from the kill to its requeue reaching B,
    and to its next ``started_at``; and, read from the Redis stream once every task has
    completed, how many times each completed."""
    settings = {
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_WORK_SCALE": f"{work_scale:g}",
        "TASKWIRE_LEASE": f"{lease_s:g}",
    }
    # 5 s + 19 s * 14/19 of work, scaled: long enough for B to start before A is killed.
    body = orjson.dumps(
        {"task_type": "generate_report", "parameters": {"title": "r", "sections": 15}}
    )
    with redis_server() as redis, contextlib.closing(Client(redis.port)) as control:
        env = {**settings, **redis.settings()}
        with serve(**env) as a:
            ids = []
            for _ in range(tasks):
                status, created = await request(a.host, a.port, "POST", "/tasks", body)
                assert status == 202, status
                ids.append(orjson.loads(created)["task_id"])
            await _until_health(a, lambda h: h["processing"] == tasks)
            with serve(**env) as b:  # only now: every first attempt runs on A
                watcher, ready = Subscriber(), asyncio.Event()
                watching = asyncio.create_task(watcher.run(b, ready, keep_data=True))
                await ready.wait()
                await _until_subscribed(b, 1)
                if (await health(b))["processing"] != tasks:
                    raise RuntimeError("the tasks ended before A could be killed: make them longer")
                killed_at = time.time()
                os.kill(a.pid, signal.SIGKILL)
                await _until_health(b, lambda h: h["completed"] >= tasks, timeout_s=60)
                await asyncio.sleep(1)  # time for a duplicate to show, if there were one
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
        entries = control("XRANGE", redis.key("events"), "-", "+")

    events: dict[str, list[tuple[str, dict[str, Any]]]] = {task_id: [] for task_id in ids}
    for _, fields in entries:
        named = dict(zip(fields[::2], fields[1::2], strict=True))
        if named[b"n"].startswith(b"task."):
            events[named[b"t"].decode()].append((named[b"n"].decode(), orjson.loads(named[b"d"])))
    requeued = {  # B connected after every first task.queued: any it has is a requeue
        orjson.loads(data)["task_id"]: arrived
        for (event_id, arrived) in watcher.received
        for name, data in [watcher.data[event_id]]
        if name == "task.queued"
    }
    per_task = []
    for task_id in ids:
        restarted = [
            timestamp(task["started_at"])
            for name, task in events[task_id]
            if name == "task.processing" and timestamp(task["started_at"]) > killed_at
        ]
        per_task.append(
            {
                "requeued_s": requeued[task_id] - killed_at if task_id in requeued else None,
                "processing_s": restarted[0] - killed_at if restarted else None,
                "completed": sum(name == "task.completed" for name, _ in events[task_id]),
                "attempt": events[task_id][-1][1]["attempt"],
                "run_s": _run_s(events[task_id][-1][1]),
            }
        )
    processing = [t["processing_s"] for t in per_task if t["processing_s"] is not None]
    return {
        "tasks": tasks,
        "lease_s": lease_s,
        "per_task": per_task,
        "max_processing_s": max(processing) if len(processing) == tasks else None,
        "completed_once": sum(t["completed"] == 1 for t in per_task),
        "duplicates": sum(max(0, t["completed"] - 1) for t in per_task),
    }


# Where the time goes

REDIS_GROUPS = (
    profile.GROUPS[0],  # Taskwire, its Redis backend included
    # redis-py writes each command through an asyncio StreamWriter: the send() syscall, which
    # on loopback also runs the receiving side's TCP, counts as writelines' own time.
    ("redis-py and its socket writes", re.compile(r"\(redis/|\(asyncio/streams\.py")),
    *profile.GROUPS[1:],
)


def where_time_goes(seconds: float = 4) -> dict[str, Any]:
    """py-spy on a Redis-backed process while wrk drives POST, then GET (as in
    ``bench/profile.py``, with redis-py as a group of its own)."""
    with redis_server() as redis, serve(**HIGH_LIMIT, **redis.settings()) as server:
        wrk = ["wrk", "-t1", "-c64", f"-d{seconds:g}s"]
        post = profile.record(
            server.pid, seconds, [*wrk, "-s", str(HERE / "post.lua"), server.url + "/tasks"]
        )
        drained(server)
        get = profile.record(
            server.pid, seconds, [*wrk, server.url + f"/tasks/{a_task_id(server)}"]
        )
    return {
        "post": profile.summarise(post, REDIS_GROUPS),
        "get": profile.summarise(get, REDIS_GROUPS),
    }


def _run_s(task: dict[str, Any]) -> float | None:
    """How long the task's last attempt ran."""
    if task["started_at"] is None or task["finished_at"] is None:
        return None
    return timestamp(task["finished_at"]) - timestamp(task["started_at"])


async def _until_subscribed(server: Server, count: int, timeout_s: float = 30) -> None:
    """As ``bench/fanout.py``'s, but a refused subscriber fails the run instead of hanging it."""
    await _until_health(server, lambda h: h["subscribers"] >= count, timeout_s)


async def _until_health(server: Server, ok: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok(await health(server)):  # another process: nothing to wait on but its counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.url}: still {await health(server)}")
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    import argparse
    import json

    import uvloop

    def once(result: dict[str, Any]) -> dict[str, Any]:
        """One run, shaped as ``bench.run.median_run`` shapes three."""
        return {**result, "p99_runs_ms": [result["lag_p99_ms"]], "all_runs": [result]}

    parser = argparse.ArgumentParser(description="The Redis stages alone, as bench.run names them.")
    parser.add_argument(
        "stages", nargs="*", help="http calls latency fanout longpoll recovery profile"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    args = parser.parse_args()
    pin_to_client_cpus()
    small = args.quick
    stages: dict[str, Any] = {
        "http": lambda: throughput(rounds=1 if small else 5, seconds=2 if small else 4),
        "calls": lambda: uvloop.run(calls(requests=200 if small else 1000)),
        "latency": lambda: once(uvloop.run(latency(tasks=20 if small else 50))),
        "fanout": lambda: once(
            uvloop.run(fanout(subscribers=200 if small else 1000, tasks=20 if small else 50))
        ),
        "longpoll": lambda: once(uvloop.run(longpoll(waiters=200 if small else 1000))),
        "recovery": lambda: uvloop.run(recovery()),
        "profile": lambda: where_time_goes(seconds=2 if small else 4),
    }
    out = HERE / "results" / "redis.json"
    out.parent.mkdir(exist_ok=True)
    results: dict[str, Any] = {}
    for stage in args.stages or stages:
        started = time.monotonic()
        results[f"redis_{stage}"] = stages[stage]()
        print(f"{stage}: {time.monotonic() - started:.0f} s", flush=True)
        out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
