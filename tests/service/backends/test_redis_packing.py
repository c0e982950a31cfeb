"""Commands packed by hiredis are the bytes redis-py's own asyncio packer writes."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from service.backends.redis.packing import with_hiredis_packing

COMMANDS: list[tuple[Any, ...]] = [
    ("EVALSHA", "ab" * 20, 1, "{p}:task:1", "{p}:", 1_800_000_000_000_000, 10_000, "", -3),
    ("HGET", "k", "json"),
    (b"SET", "k", "é", "PX", 1.5, 1e20),
    ("CONFIG GET", "maxmemory"),  # a command name of two words
    (b"CLIENT SETNAME", b"taskwire"),
    ("SET", memoryview(b"k"), bytearray(b"v")),
    ("SET", "big", b"x" * 100_000),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_are_redis_pys_own(command: tuple[Any, ...]) -> None:
    packed = with_hiredis_packing(Connection)()
    assert b"".join(packed.pack_command(*command)) == b"".join(Connection().pack_command(*command))


def test_what_cannot_be_sent_is_a_data_error_as_in_redis_py() -> None:
    for connection in (Connection(), with_hiredis_packing(Connection)()):
        with pytest.raises(DataError):
            connection.pack_command("SET", "k", None)
        with pytest.raises(DataError):
            connection.pack_command("SET", "k", True)


def test_the_class_the_url_chose_is_kept_and_wrapped_once() -> None:
    unix = with_hiredis_packing(UnixDomainSocketConnection)
    assert issubclass(unix, UnixDomainSocketConnection)
    assert with_hiredis_packing(unix) is unix
