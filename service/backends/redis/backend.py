"""The Redis backend: any number of Taskwire processes, on any number of hosts, one service.

Every transition is one Lua script (``lua/*.lua``), so a crash can never split one and no
other process sees half of it. Every event goes into one Redis stream, numbered by the
scripts with the service's consecutive integer ids; one reader per process (``XREAD BLOCK``)
hands them, in id order, to this process's ``EventBus``, which serves its streams,
watches and long-polls. Claims are leases: the worker renews its lease while the task runs,
every write it makes carries its token, and a reaper (any process, one at a time) returns
the tasks of lost workers to the queue.

A request costs one round trip: the submit and read scripts count it against the rate limit
first (``lua/rated.lua``), a worker's finish claims its next task, and what a process asks for
in one turn of its event loop goes to Redis as one pipeline (``pipelining.py``).

Redis being away is an answer, not a crash: every call has a short timeout and fails with
``BackendUnavailable`` (a 503); after a failure, calls fail at once for a moment instead of
each waiting out its timeout; the reader and the workers retry with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.backend import Cancelling, Claim, RateCheck, TaskPage, TaskQuery
from service.backends.redis.codec import Entry, fragment
from service.backends.redis.packing import with_hiredis_packing
from service.backends.redis.pipelining import AutoPipeline, OnAnswer
from service.clock import Clock, utc
from service.errors import (
    BackendUnavailable,
    LeaseLost,
    QueueFull,
    RateLimited,
    StoreFull,
    TaskConflict,
    TaskNotFound,
)
from service.events import Event, EventBus, HistoryPage
from service.idempotency import Idempotency, IdempotencyRecord
from service.model import Task, TaskError, TaskStatus, owner_of, task_from_json
from service.stats import (
    INTERVAL_S,
    RUN_TIME_BOUNDS_S,
    WINDOW_S,
    Interval,
    history,
    interval_of,
    run_time_bucket,
)

logger = logging.getLogger("taskwire.redis")

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ReadOnlyError, OSError)
CALL_TIMEOUT_S = 1.0
"""Longest a call waits for Redis: a request that needs it answers 503 well within 2 s."""
DOWN_S = 0.5
"""After a call timed out, how long further calls fail at once instead of waiting too (a
refused connection fails at once anyway, and the next call may find Redis back)."""
BLOCK_MS = 1000
"""How long the reader's XREAD waits for new entries before asking again."""
CLAIM_POLL_S = 1.0
"""Longest an idle worker waits before asking again, if it missed the event that says so."""
POOL_SIZE = 32
"""Connections to Redis per process (the reader has one more of its own)."""
PAGE = 256
"""Tasks per page of a list; events per page of a replay."""
EXPIRE_BATCH = 500
"""Tasks removed per expiry script, so no one script holds Redis for long."""
REAPER_EVERY_S = 1.0

_RATED = ("submit", "read")
"""Scripts that count the request against its rate limit first (``RateCheck``)."""
_TRANSITIONS = (
    *_RATED,
    "claim",
    "progress",
    "renew",
    "finish",
    "cancel",
    "retry",
    "expire",
    "recover",
    "release",
    "select",
)


def _script(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text()


def script_sources() -> dict[str, str]:
    """Each script as it is loaded, by name: a transition after ``common.lua`` (and a rated
    one after the rate limit's function and ``rated.lua``), the rate counter's on its own."""
    common, ratelimit, rated = _script("common"), _script("ratelimit"), _script("rated")
    sources = {
        name: "\n".join([common, *((ratelimit, rated) if name in _RATED else ()), _script(name)])
        for name in _TRANSITIONS
    }
    # A read needs none of common.lua, whose dozen functions every call would define again.
    sources["read"] = "\n".join(["local P = ARGV[1]", ratelimit, rated, _script("read")])
    sources["ratelimit"] = (
        ratelimit + "\nreturn rate_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), "
        "tonumber(ARGV[3]), tonumber(ARGV[4]))"
    )
    for name in ("idempotent_begin", "idempotent_abandon", "sample", "elect"):
        sources[name] = _script(name)
    return sources


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{netloc}"))


class StreamHistory:
    """The event stream as a replay source for subscribers that resume."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend

    async def after(self, event_id: int, limit: int) -> HistoryPage:
        backend = self._backend
        async with backend.pipeline() as pipe:
            pipe.xrange(backend.key("events"), "-", "+", count=1)
            pipe.get(backend.key("eid"))
            pipe.xrange(backend.key("events"), f"{event_id + 1}-0", "+", count=limit)
            oldest, last, entries = await backend.execute(pipe)
        last_id = int(last or 0)
        first_kept = Entry(*oldest[0]).id if oldest else last_id + 1
        if event_id > last_id or event_id < first_kept - 1:
            return HistoryPage([], event_id, more=False, resync=True)
        page = [Entry(*item) for item in entries]
        through = page[-1].id if page else event_id
        events = [entry.event for entry in page if entry.event is not None]
        return HistoryPage(events, through, more=through < last_id)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A stream entry's fields as Redis sends them, ``[name, value, name, value, …]``."""
    items = iter(flat)
    return dict(zip(items, items, strict=False))


def _interval(start: int, fields: dict[bytes, bytes]) -> Interval:
    """An interval as Redis keeps it: ``f:<outcome>``, ``q``, ``p``, ``h:<type>:<bucket>``."""
    interval = Interval(start)
    buckets = len(RUN_TIME_BOUNDS_S) + 1
    for name, value in fields.items():
        kind, _, rest = name.decode().partition(":")
        match kind:
            case "f":
                interval.finished[rest] = int(value)
            case "q":
                interval.queued = int(value)
            case "p":
                interval.processing = int(value)
            case "h":
                task_type, _, bucket = rest.rpartition(":")
                counts = interval.run_times.setdefault(task_type, [0] * buckets)
                counts[int(bucket)] += int(value)
    return interval


CANCELS_KEPT = 1024
"""Cancels of running tasks remembered, for claims still on their way when one is heard."""


def _stop_if_cancelled() -> None:
    """Raise ``CancelledError`` if this task has been asked to stop.

    redis-py checks a pooled connection with ``asyncio.timeout(0)``, and on Python 3.11 a
    cancellation that lands in that moment becomes a ``TimeoutError`` it swallows: the
    request to stop is still counted (``cancelling()``), so loops look for it themselves.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, asking again if a cancel is lost."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s failed", task.get_name(), exc_info=task.exception())


class RedisCounter:
    """The sliding-window rate limit, kept in Redis for every process at once.

    Uses the Redis server's clock, so processes whose clocks differ still agree; a ``clock``
    (seconds) replaces it in tests.
    """

    def __init__(
        self, backend: RedisBackend, *, limit: int, window_s: int, clock: Clock | None
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._backend = backend
        self._clock = clock
        self._args = (limit, window_s * 1_000_000, window_s * 1000)  # resolution: window/1000

    async def hit(self, key: str) -> tuple[bool, int, int]:
        now_us = "" if self._clock is None else int(self._clock() * 1_000_000)
        keys = [self._backend.key(f"rate:{key}")]
        allowed, remaining, reset_s = await self._backend.call(
            self._backend.ratelimit_script, keys, [*self._args, now_us]
        )
        return bool(allowed), int(remaining), int(reset_s)


class RedisBackend:
    """The ``Backend`` of many processes, on a Redis-compatible server (Redis >= 6.2, Valkey).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL of the server.
        prefix: every key starts with ``{prefix}:``; the braces make it one hash tag, so a
            Redis Cluster keeps every key of the service in one slot.
        max_queue, max_tasks, event_buffer, subscriber_queue: as for the memory backend,
            but across the whole service.
        concurrency: most tasks processing at once across the whole service.
        lease_s: how long a claim holds without being renewed.
        clock: wall-clock seconds, for timestamps and the TTL.
        rate_clock: seconds for the rate-limit window (default: the Redis server's clock).
        timeout_s: longest a call waits for Redis.
        reaper_every_s: how often, at most, one process of the service recovers lost claims.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        max_queue: int,
        max_tasks: int,
        event_buffer: int,
        subscriber_queue: int,
        concurrency: int,
        subscriber_bytes: int = 8 * 2**20,
        lease_s: float,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        rate_clock: Clock | None = None,
        timeout_s: float = CALL_TIMEOUT_S,
        reaper_every_s: float = REAPER_EVERY_S,
    ) -> None:
        self.url = redacted(url)
        self._reaper_every_ms = int(reaper_every_s * 1000)
        self.lease_s: float | None = lease_s
        self._prefix = f"{{{prefix}}}:"
        self._max_queue = max_queue
        self._max_tasks = max_tasks
        self._event_buffer = event_buffer
        self._concurrency = concurrency
        self._clock = clock
        self._monotonic = monotonic
        self._rate_clock = rate_clock
        options: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            # Once, at once, and only a broken connection: a connection that cannot be
            # opened is tried again, and so are redis-py's own calls, all of them reads
            # (a server that does not answer is not waited for twice). Scripts, which
            # change state, go by AutoPipeline, which never sends one twice.
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        # A burst (a thousand long-polls woken at once) waits its turn for a connection,
        # up to the call timeout, instead of failing for want of one.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=timeout_s, **options
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._pipelined = AutoPipeline(self._redis)
        # The reader blocks in XREAD: a connection of its own, with room for the block.
        self._reader_redis = aioredis.Redis.from_url(
            url, **{**options, "socket_timeout": timeout_s + BLOCK_MS / 1000}
        )
        for each in (pool, self._reader_redis.connection_pool):
            each.connection_class = with_hiredis_packing(each.connection_class)
        sources = script_sources()
        self._scripts: dict[str, AsyncScript] = {
            name: self._redis.register_script(sources[name]) for name in _TRANSITIONS
        }
        self.ratelimit_script = self._redis.register_script(sources["ratelimit"])
        self._idempotent_begin = self._redis.register_script(sources["idempotent_begin"])
        self._sample = self._redis.register_script(sources["sample"])
        self._elect = self._redis.register_script(sources["elect"])
        self._idempotent_abandon = self._redis.register_script(sources["idempotent_abandon"])
        self.bus = EventBus(
            StreamHistory(self),
            subscriber_queue=subscriber_queue,
            subscriber_bytes=subscriber_bytes,
            last_id=0,
        )
        self._reader: asyncio.Task[None] | None = None
        self._reader_connection: AbstractConnection | None = None
        self._work = asyncio.Event()
        self._claiming = asyncio.Lock()
        self._claimed: deque[Claim] = deque()
        """Tasks claimed by a finish (``then_claim``), for the next ``claim``."""
        self._cancels_heard: dict[bytes, None] = {}
        """Tokens of the latest claims whose cancel this process heard of (oldest first): a
        claim whose answer was still on its way then has no job yet to stop."""
        self._stop: Callable[[str], object] = lambda task_id: None
        self._down_until = -math.inf
        self._down_reason = ""

    def key(self, name: str) -> str:
        return self._prefix + name

    # Lifecycle

    async def start(self) -> None:
        try:
            await self._find_position()
        except UNAVAILABLE as exc:
            logger.warning("redis at %s is unavailable at start (%s); retrying", self.url, exc)
        self._reader = asyncio.create_task(self._read(), name="taskwire redis reader")

    async def _find_position(self) -> None:
        """Start this process's bus at the latest event: the ones before are history."""
        now_us = int(self._clock() * 1_000_000)
        # Ids start at the clock in microseconds the first time, as in memory.
        await self._reader_redis.set(self.key("eid"), now_us - 1, nx=True)
        self.bus.last_id = int(await self._reader_redis.get(self.key("eid")) or 0)

    async def close(self) -> None:
        # Claims still on their way land in _claimed (their jobs may have been cancelled).
        try:
            await self._pipelined.drain()
        except Exception as exc:  # pragma: no cover - each command's caller saw its error
            logger.warning("commands in flight at close: %s", exc)
        while self._claimed:  # claimed for a worker that has stopped since
            claim = self._claimed.popleft()
            try:
                await self.release(claim)
            except (BackendUnavailable, LeaseLost) as exc:  # its lease will run out instead
                logger.warning("task %s not released: %s", claim.task.task_id, exc)
        if self._reader is not None:
            await cancelled(self._reader)
        if self._reader_connection is not None:
            await self._reader_redis.connection_pool.release(self._reader_connection)
        self.bus.close()
        await self._redis.aclose()
        await self._reader_redis.aclose()

    def on_cancel(self, stop: Callable[[str], object]) -> None:
        self._stop = stop

    # Reads

    async def get(self, task_id: str, *, rate: RateCheck | None = None) -> Task:
        return task_from_json(await self.get_json(task_id, rate=rate))

    async def get_json(self, task_id: str, *, rate: RateCheck | None = None) -> bytes:
        if rate is None:
            data = await self._guarded(
                self._pipelined.execute("HGET", self.key(f"task:{task_id}"), "json")
            )
        else:  # one script counts the request and reads: one round trip
            outcome, *found = self._rated(
                rate,
                await self._transition("read", f"task:{task_id}", task_id, *self._rate_args(rate)),
            )
            data = found[0] if outcome == b"ok" else None
        if data is None:
            raise TaskNotFound(task_id)
        assembled: bytes = data  # by the scripts, as task_json writes it (codec.py)
        return assembled

    async def read(self, task_id: str) -> tuple[Task, int]:
        async with self.pipeline() as pipe:
            pipe.hget(self.key(f"task:{task_id}"), "json")
            pipe.hget(self.key(f"task:{task_id}"), "v")
            data, version = await self.execute(pipe)
        if data is None:
            raise TaskNotFound(task_id)
        return task_from_json(data), int(version)

    async def select(self, query: TaskQuery) -> AsyncIterator[TaskPage]:
        statuses = ",".join(sorted(query.statuses))
        left = query.limit if query.limit is not None else math.inf
        cursor: bytes | str = "+inf"
        more = True
        while more and left > 0:
            wanted = int(min(left, PAGE))
            cursor, more_flag, as_of, *found = await self._transition(
                "select",
                "tasks",
                cursor,
                PAGE * 4,
                wanted,
                statuses,
                query.task_type or "",
                query.owner or "",
            )
            more = bool(int(more_flag))
            left -= len(found)
            yield TaskPage([task_from_json(data) for data in found], int(as_of))

    async def counts(self) -> Mapping[TaskStatus, int]:
        counts = await self._guarded(self._redis.hgetall(self.key("counts")))
        return {status: int(counts.get(status.value.encode(), 0)) for status in TaskStatus}

    # Transitions

    async def submit(
        self,
        task: Task,
        *,
        planned_s: float,
        idempotency: Idempotency | None = None,
        rate: RateCheck | None = None,
    ) -> Task:
        record = (
            ("", "", 0)
            if idempotency is None
            else (
                self.key(f"idem:{idempotency.scope}"),
                idempotency.fingerprint,
                int(idempotency.ttl_s * 1000),
            )
        )
        answer = await self._transition(
            "submit",
            "queue",
            task.task_id,
            task.task_type,
            task.priority,
            fragment(task.parameters),
            fragment(task.created_at),
            fragment(round(planned_s, 1)),
            self._max_queue,
            self._max_tasks,
            *record,
            owner_of(task) or "",
            *self._rate_args(rate),
        )
        outcome, value = self._rated(rate, answer)
        match outcome:
            case b"queue_full":
                raise QueueFull(self._max_queue, int(value))
            case b"store_full":
                raise StoreFull(self._max_tasks, int(value))
        return task  # queued as it was given: the script's JSON of it is task_json's (tested)

    async def claim(self) -> Claim:
        async with self._claiming:  # one claim at a time per process: no herd on each event
            while True:
                if self._claimed:  # taken by a finish or a claim, queued by _take_claim
                    claim = self._claimed.popleft()
                    if claim.token.encode() in self._cancels_heard:
                        # Cancelled before it reached a worker: stopped once its job exists
                        # (the worker makes it as this returns).
                        asyncio.get_running_loop().call_soon(self._stop, claim.task.task_id)
                    return claim
                self._work.clear()
                try:
                    claimed = await self._transition(
                        "claim", "queue", *self._claim_args(), on_answer=self._take_claim
                    )
                except BackendUnavailable:
                    claimed = None
                if claimed:
                    continue  # _take_claim queued it
                try:
                    async with asyncio.timeout(CLAIM_POLL_S):
                        await self._work.wait()
                except TimeoutError:
                    pass

    async def progress(self, claim: Claim, *, percent: int, eta_s: float) -> None:
        task_id = claim.task.task_id
        answer = await self._transition(
            "progress", f"task:{task_id}", task_id, claim.token, percent, fragment(eta_s)
        )
        self._check(answer, claim)

    async def finish(
        self,
        claim: Claim,
        status: TaskStatus,
        *,
        result: Any = None,
        error: TaskError | None = None,
        then_claim: bool = False,
    ) -> Task:
        task_id = claim.task.task_id
        now = self._clock()
        answer = await self._transition(
            "finish",
            f"task:{task_id}",
            task_id,
            claim.token,
            status.value,
            fragment(result),
            fragment(error),
            fragment(utc(now)),
            int(now * 1000),
            self._stats_key(now),
            self._run_time_field(claim.task, status, now),
            *(self._claim_args() if then_claim else ("", "", "")),
            on_answer=self._take_claim,
        )
        if answer[0] == b"lost":
            raise LeaseLost(task_id)
        return task_from_json(answer[1])

    def _take_claim(self, answer: Any) -> None:
        """A task claimed by a claim (``[id, token, json]``) or by a finish (``['ok', json,
        id, token, json]``), queued for the next ``claim``. Told as the answer arrives, even
        if the job that asked was cancelled meanwhile: else the task would sit claimed by no
        one until its lease ran out, and come back as a lost worker's."""
        if answer and answer[0] in (b"ok", b"lost"):  # a finish's: the claim follows, if any
            answer = answer[2:]
        if answer:
            _, token, data = answer
            self._claimed.append(Claim(task_from_json(data), token.decode()))
            self._work.set()

    async def release(self, claim: Claim) -> Task:
        task_id = claim.task.task_id
        now = self._clock()
        answer = await self._transition(
            "release",
            f"task:{task_id}",
            task_id,
            claim.token,
            fragment(utc(now)),
            int(now * 1000),
            self._stats_key(now),
        )
        if answer[0] == b"lost":
            raise LeaseLost(task_id)
        return task_from_json(answer[1])

    async def renew(self, claim: Claim) -> None:
        task_id = claim.task.task_id
        lease_ms = int((self.lease_s or 0) * 1000)
        answer = await self._transition("renew", f"task:{task_id}", task_id, claim.token, lease_ms)
        self._check(answer, claim)

    async def cancel(self, task_id: str) -> Cancelling:
        now = self._clock()
        outcome, *rest = await self._transition(
            "cancel",
            f"task:{task_id}",
            task_id,
            fragment(utc(now)),
            int(now * 1000),
            self._stats_key(now),
        )
        match outcome:
            case b"missing":
                raise TaskNotFound(task_id)
            case b"finished":
                raise TaskConflict(
                    f"task {task_id} is {rest[0].decode()}; "
                    "only queued or processing ones can be cancelled"
                )
            case b"running":
                self._stop(task_id)  # at once, if it runs here; else its process hears it
                return Cancelling(task_from_json(rest[0]), running=True)
        return Cancelling(task_from_json(rest[0]), running=False)

    async def retry(self, task_id: str) -> Task:
        outcome, *rest = await self._transition(
            "retry", f"task:{task_id}", task_id, self._max_queue
        )
        match outcome:
            case b"missing":
                raise TaskNotFound(task_id)
            case b"conflict":
                raise TaskConflict(
                    f"task {task_id} is {rest[0].decode()}; "
                    "only failed or cancelled tasks can be retried"
                )
            case b"queue_full":
                raise QueueFull(self._max_queue, int(rest[0]))
        return task_from_json(rest[0])

    async def sweep(self, *, ttl_s: float) -> int:
        now = self._clock()
        await self._transition(
            "recover",
            "processing",
            fragment(utc(now)),
            int(now * 1000),
            EXPIRE_BATCH,
            self._reaper_every_ms,
            self._stats_key(now),
        )
        before_ms = int((now - ttl_s) * 1000)
        removed = 0
        while True:
            batch = int(await self._transition("expire", "finished", before_ms, EXPIRE_BATCH))
            removed += batch
            if batch < EXPIRE_BATCH:
                return removed

    async def begin_idempotent(
        self, scope: str, in_flight_ttl_s: float
    ) -> IdempotencyRecord | None:
        found = await self.call(
            self._idempotent_begin, [self.key(f"idem:{scope}")], [int(in_flight_ttl_s * 1000)]
        )
        if not found:
            return None
        state, fingerprint, task_id = (value.decode() for value in found)
        return IdempotencyRecord(state == "inflight", fingerprint, task_id)

    async def abandon_idempotent(self, scope: str) -> None:
        await self.call(self._idempotent_abandon, [self.key(f"idem:{scope}")], [])

    async def sample(self) -> None:
        ttl_s = WINDOW_S + INTERVAL_S
        keys = [self._stats_key(self._clock())]
        await self.call(self._sample, keys, [self.key("counts"), ttl_s])

    async def stats(self) -> list[Interval]:
        starts = [interval.start for interval in history({}, self._clock())]
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hgetall(self.key(f"stats:{start}"))
            found = await self.execute(pipe)
        return [_interval(start, fields) for start, fields in zip(starts, found, strict=True)]

    async def task_events(self, task_id: str) -> list[Event]:
        ids = await self._guarded(self._redis.lrange(self.key(f"tev:{task_id}"), 0, -1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.xrange(self.key("events"), f"{event_id.decode()}-0", f"{event_id.decode()}-0")
            found = await self.execute(pipe)
        entries = [Entry(*items[0]) for items in found if items]  # trimmed ones are gone
        return [entry.event for entry in entries if entry.event is not None]

    async def event_counts(self) -> Mapping[str, int]:
        counts = await self._guarded(self._redis.hgetall(self.key("eventcounts")))
        return {name.decode(): int(count) for name, count in counts.items()}

    async def elect(self, role: str, holder: str, ttl_s: float) -> bool:
        keys = [self.key(f"role:{role}")]
        return bool(await self.call(self._elect, keys, [holder, int(ttl_s * 1000)]))

    def _stats_key(self, now_s: float) -> str:
        return self.key(f"stats:{interval_of(now_s)}")

    @staticmethod
    def _run_time_field(task: Task, status: TaskStatus, now_s: float) -> str:
        if status is TaskStatus.CANCELLED or task.started_at is None:
            return ""
        run_time_s = now_s - task.started_at.timestamp()
        return f"h:{task.task_type}:{run_time_bucket(run_time_s)}"

    def rate_counter(self, *, limit: int, window_s: int) -> RedisCounter:
        return RedisCounter(self, limit=limit, window_s=window_s, clock=self._rate_clock)

    # Calls

    def pipeline(self) -> Any:
        return self._redis.pipeline(transaction=True)

    async def execute(self, pipe: Any) -> list[Any]:
        result: list[Any] = await self._guarded(pipe.execute())
        return result

    async def call(
        self, script: AsyncScript, keys: list[str], args: list[Any], on_answer: OnAnswer = None
    ) -> Any:
        return await self._guarded(self._pipelined.evalsha(script, keys, args, on_answer))

    async def _transition(self, name: str, key: str, *args: Any, on_answer: OnAnswer = None) -> Any:
        now_us = int(self._clock() * 1_000_000)
        return await self.call(
            self._scripts[name],
            [self.key(key)],
            [self._prefix, now_us, self._event_buffer, *args],
            on_answer,
        )

    def _claim_args(self) -> tuple[Any, ...]:
        """What a claim needs (``claim_next`` in ``lua/common.lua``)."""
        lease_ms = int(self.lease_s * 1000) if self.lease_s else 0
        return (self._concurrency, lease_ms, fragment(self._now()))

    def _rate_args(self, rate: RateCheck | None) -> tuple[Any, ...]:
        """The five values a rated script (``lua/rated.lua``) ends its arguments with."""
        if rate is None:
            return ("", 0, 0, 0, "")
        now_us = "" if self._rate_clock is None else int(self._rate_clock() * 1_000_000)
        window_us = rate.window_s * 1_000_000
        return (rate.key, rate.limit, window_us, window_us // 1000, now_us)

    def _rated(self, rate: RateCheck | None, answer: list[Any]) -> list[Any]:
        """A rated script's answer without its count, which ``rate`` is told of (and
        ``RateLimited`` raised if the request was refused)."""
        if rate is None:
            return answer
        if answer[0] == b"rate_limited":
            reset_s = int(answer[2])
            rate.decide(False, int(answer[1]), reset_s)
            raise RateLimited(reset_s)
        rate.decide(True, int(answer[-2]), int(answer[-1]))
        return answer[:-2]

    async def _guarded(self, call: Any) -> Any:
        if self._monotonic() < self._down_until:
            call.close()
            raise BackendUnavailable("redis", self._down_reason)
        try:
            return await call
        except UNAVAILABLE as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, RedisTimeoutError):  # slow to fail: spare the next callers
                self._down_until = self._monotonic() + DOWN_S
                self._down_reason = reason
            raise BackendUnavailable("redis", reason) from exc

    def _check(self, answer: list[bytes], claim: Claim) -> None:
        if answer[0] == b"lost":
            raise LeaseLost(claim.task.task_id)
        if answer[1]:  # a cancel was asked for: the stream entry may not have arrived yet
            self._stop(claim.task.task_id)

    def _now(self) -> Any:
        return utc(self._clock())

    # The reader

    async def _read(self) -> None:
        """Deliver every stream entry to this process, in order, for as long as it runs."""
        backoff_s = 0.05
        while True:
            _stop_if_cancelled()
            try:
                if not self.bus.last_id:
                    await self._find_position()
                replies = await self._xread()
            except UNAVAILABLE as exc:
                _stop_if_cancelled()
                logger.warning("reading events from %s failed (%s); retrying", self.url, exc)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
                continue
            backoff_s = 0.05
            if isinstance(replies, dict):  # RESP3 (redis-py 8's default): {stream: entries}
                replies = replies.items()
            for _, entries in replies or ():  # none: the block ran out with nothing new
                self._deliver([Entry(entry_id, _pairs(fields)) for entry_id, fields in entries])

    async def _xread(self) -> Any:
        """The next entries, ``XREAD BLOCK`` on the reader's own connection, as Redis sends
        them. redis-py's ``xread`` takes a pooled connection and gives it back, retries, and
        reshapes the answer on every call, once per batch of events: a cost on every task's
        way, for nothing a single reader needs. A connection that fails is closed by
        ``read_response`` and opened again by the next command."""
        if self._reader_connection is None:
            pool = self._reader_redis.connection_pool
            self._reader_connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        connection = self._reader_connection
        await connection.send_command(
            "XREAD", "COUNT", PAGE, "BLOCK", BLOCK_MS,
            "STREAMS", self.key("events"), f"{self.bus.last_id}-0",
        )  # fmt: skip
        return await connection.read_response()

    def _deliver(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.id > self.bus.last_id + 1 and self.bus.last_id:
                # Entries were trimmed before this process read them: its subscribers may
                # have missed events, so they end, and reconnect (resync) by their last id.
                logger.warning("missed events %d-%d", self.bus.last_id + 1, entry.id - 1)
                self.bus.reset()
            if entry.event is None:
                self.bus.last_id = entry.id
                if entry.name == "cancel":
                    self._stop(entry.task_id)
                    self._cancels_heard[entry.data] = None
                    if len(self._cancels_heard) > CANCELS_KEPT:
                        del self._cancels_heard[next(iter(self._cancels_heard))]
                continue
            self.bus.deliver(entry.event)
            if entry.name != "task.progress":
                self._work.set()  # a task was queued, or a place freed: a claim may succeed
