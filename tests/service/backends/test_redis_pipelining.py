"""AutoPipeline against a real redis-server: what one turn of the event loop asks for goes
as one pipeline, and each command still gets its own answer or its own error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.backends.redis.pipelining import AutoPipeline
from tests.processes import free_port
from tests.support import FAILSAFE_S


class Spied(aioredis.Redis):
    """A real client that counts the batches its connections write (``pack_commands``:
    one command alone, a connection's handshake among them, is packed by ``pack_command``)."""

    pipelines = 0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Spied]:
    client = Spied.from_url(redis_url)
    pool = client.connection_pool
    base = pool.connection_class

    def pack_commands(connection: Any, commands: Any) -> Any:
        client.pipelines += 1
        return base.pack_commands(connection, commands)

    pool.connection_class = type("Counted", (base,), {"pack_commands": pack_commands})
    yield client
    await client.aclose()


async def test_commands_asked_for_in_one_turn_go_as_one_pipeline(
    redis: Spied, redis_prefix: str
) -> None:
    pipelined = AutoPipeline(redis)
    key = f"{redis_prefix}:n"
    async with asyncio.timeout(FAILSAFE_S):
        answers = await asyncio.gather(*(pipelined.execute("INCR", key) for _ in range(50)))
    assert sorted(answers) == list(range(1, 51))
    assert redis.pipelines == 1
    async with asyncio.timeout(FAILSAFE_S):
        assert await pipelined.execute("GET", key) == b"50"  # a later turn: a pipeline of its own
    assert redis.pipelines == 2


async def test_a_burst_larger_than_a_pipeline_goes_as_several(
    redis: Spied, redis_prefix: str
) -> None:
    pipelined = AutoPipeline(redis, most=8)
    async with asyncio.timeout(FAILSAFE_S):
        answers = await asyncio.gather(
            *(pipelined.execute("INCR", f"{redis_prefix}:m") for _ in range(20))
        )
    assert sorted(answers) == list(range(1, 21))
    assert redis.pipelines == 3


async def test_an_error_answer_fails_only_its_own_command(redis: Spied, redis_prefix: str) -> None:
    pipelined = AutoPipeline(redis)
    await redis.hset(f"{redis_prefix}:h", "field", "value")
    async with asyncio.timeout(FAILSAFE_S):
        good, bad = await asyncio.gather(
            pipelined.execute("INCR", f"{redis_prefix}:k"),
            pipelined.execute("INCR", f"{redis_prefix}:h"),  # WRONGTYPE
            return_exceptions=True,
        )
    assert good == 1
    assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)


async def test_a_script_redis_does_not_know_is_loaded_and_run(
    redis: Spied, redis_prefix: str
) -> None:
    script = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    await redis.script_flush()
    pipelined = AutoPipeline(redis)
    async with asyncio.timeout(FAILSAFE_S):
        assert await pipelined.evalsha(script, [f"{redis_prefix}:s"], [5]) == 5
        assert await pipelined.evalsha(script, [f"{redis_prefix}:s"], [5]) == 10


async def test_a_caller_that_stops_waiting_leaves_the_others_their_answers(
    redis: Spied, redis_prefix: str
) -> None:
    pipelined = AutoPipeline(redis)
    key = f"{redis_prefix}:c"
    gone = asyncio.ensure_future(pipelined.execute("INCR", key))
    kept = asyncio.ensure_future(pipelined.execute("INCR", key))
    gone.cancel()
    async with asyncio.timeout(FAILSAFE_S):
        assert await kept in (1, 2)
    assert gone.cancelled()


async def test_when_redis_cannot_be_reached_every_command_of_the_pipeline_fails() -> None:
    client = aioredis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    pipelined = AutoPipeline(client)
    try:
        async with asyncio.timeout(FAILSAFE_S):
            outcomes = await asyncio.gather(
                pipelined.execute("GET", "a"),
                pipelined.execute("GET", "b"),
                return_exceptions=True,
            )
    finally:
        await client.aclose()
    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes), outcomes


async def test_a_pipeline_cancelled_on_its_way_cancels_its_commands(redis: Spied) -> None:
    # As at shutdown, when every task is cancelled: nobody is left waiting for an answer.
    pipelined = AutoPipeline(redis)
    answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pipelined._queued.append((("GET", "x"), answer, None))
    pipelined._flush()
    for sending in list(pipelined._sending):
        sending.cancel()
    async with asyncio.timeout(FAILSAFE_S):
        await asyncio.gather(answer, return_exceptions=True)
    assert answer.cancelled()
    assert not pipelined._sending


async def test_a_connection_redis_closed_while_pooled_is_replaced_before_use(
    redis_url: str, redis_prefix: str
) -> None:
    # As after a restart of Redis: the pooled connection's end is seen, and a new one used.
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    client = aioredis.Redis.from_url(redis_url, retry=retry)
    killer = aioredis.Redis.from_url(redis_url)
    pipelined = AutoPipeline(client)
    key = f"{redis_prefix}:again"
    try:
        async with asyncio.timeout(FAILSAFE_S):
            assert await pipelined.execute("INCR", key) == 1
            connection_id = await pipelined.execute("CLIENT", "ID")
            assert await killer.client_kill_filter(_id=connection_id) == 1
            (pooled,) = client.connection_pool._available_connections  # type: ignore[attr-defined]
            assert await pooled._parser._stream.read(1) == b""  # its end has arrived
            assert await pipelined.execute("INCR", key) == 2
            assert await pipelined.execute("CLIENT", "ID") != connection_id
    finally:
        await client.aclose()
        await killer.aclose()


async def test_commands_whose_connection_breaks_once_sent_fail_and_are_never_sent_again(
    redis_url: str, redis_prefix: str
) -> None:
    # They may have run (a script that queued a task): sent again, they would run twice.
    upstream_port = aioredis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
    cut = asyncio.Event()  # set once a command has gone through and its answer was cut off

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        try:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
                if b"INCR" in data:  # Redis runs it; its answer never comes back
                    await up_reader.read(65536)
                    writer.transport.abort()
                    cut.set()
                    return
                writer.write(await up_reader.read(65536))
                await writer.drain()
        finally:
            up_writer.close()

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    client = aioredis.Redis(port=port, retry=retry)
    direct = aioredis.Redis.from_url(redis_url)
    key = f"{redis_prefix}:once"
    try:
        async with asyncio.timeout(FAILSAFE_S):
            with pytest.raises(RedisConnectionError):
                await AutoPipeline(client).execute("INCR", key)
            await cut.wait()
            assert await direct.get(key) == b"1"
    finally:
        await client.aclose()
        await direct.aclose()
        proxy.close()
        await proxy.wait_closed()


async def test_an_answer_too_late_is_a_timeout_and_never_read_as_the_next_ones(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=0.2)
    pipelined = AutoPipeline(client)
    key = f"{redis_prefix}:late"
    try:
        async with asyncio.timeout(FAILSAFE_S):
            with pytest.raises(RedisTimeoutError):
                await pipelined.execute("BLPOP", key, 2)  # Redis answers once 2 s are up
            # Its connection was closed: the push is not queued behind it, nor answered with
            # the BLPOP's late answer, and nothing pops the value meanwhile.
            assert await pipelined.execute("RPUSH", key, "value") == 1
            assert await pipelined.execute("LPOP", key) == b"value"
            assert await pipelined.execute("PING") == b"PONG"  # Redis's own answer, as sent
    finally:
        await client.aclose()
