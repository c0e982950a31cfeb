"""The client and the command with API keys: the key sent on every request (event feeds
included), ``whoami``, a missing or wrong key as ``Unauthorized`` (exit 4, in words), and
``taskwire keys new`` making a key that a service given its line accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from service.access import new_key
from taskwire import AsyncClient, Client, Identity, Unauthorized
from taskwire.cli import ExitCode, app
from tests.support import serve
from tests.taskwire.conftest import SUM, ThreadedServer, live_client

ALICE, ALICE_LINE = new_key("alice")
OPS, OPS_LINE = new_key("ops", admin=True)
runner = CliRunner()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(f"{ALICE_LINE}\n{OPS_LINE}\n")
    return path


@pytest.fixture
def keyed(make_app: Callable[..., FastAPI], keys_file: Path) -> FastAPI:
    return make_app(api_keys_file=keys_file)


async def test_the_key_goes_with_every_request_and_every_feed(keyed: FastAPI) -> None:
    async with live_client(keyed, api_key=ALICE) as alice:
        assert await alice.whoami() == Identity(keys=True, name="alice", admin=False)
        task = await alice.submit("compute_sum", SUM)
        assert task.owner == "alice"
        events = [event async for event in alice.task_events(task.task_id)]
        assert events[-1].name == "task.completed"
        assert [t.task_id async for t in alice.list()] == [task.task_id]


async def test_a_missing_or_wrong_key_is_unauthorized(
    keyed: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKWIRE_API_KEY", raising=False)
    async with (
        serve(keyed) as url,
        AsyncClient(url) as nobody,
        AsyncClient(url, api_key="guess") as guesser,
    ):
        for client in (nobody, guesser):
            with pytest.raises(Unauthorized) as refused:
                await client.submit("compute_sum", SUM)
            assert refused.value.status == 401
            assert refused.value.attempts == 1  # a 401 is not retried


async def test_the_key_comes_from_the_environment(
    keyed: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKWIRE_API_KEY", OPS)
    async with live_client(keyed) as ops:
        assert (await ops.whoami()).admin


def test_whoami_with_keys_off(threaded: Callable[..., ThreadedServer]) -> None:
    with threaded() as server, Client(server.url) as client:
        assert client.whoami() == Identity(keys=False, name=None, admin=True)


def test_the_command_takes_a_key_and_says_when_it_is_missing_or_wrong(
    make_app: Callable[..., FastAPI], keys_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKWIRE_API_KEY", raising=False)
    with ThreadedServer(make_app(api_keys_file=keys_file)) as server:
        missing = runner.invoke(app, ["ls", "--url", server.url])
        wrong = runner.invoke(app, ["ls", "--url", server.url, "--key", "guess"])
        mine = runner.invoke(app, ["whoami", "--url", server.url, "--key", ALICE])
        monkeypatch.setenv("TASKWIRE_API_KEY", OPS)
        admin = runner.invoke(app, ["whoami", "--url", server.url, "--json"])
    assert missing.exit_code == wrong.exit_code == ExitCode.REFUSED
    assert "asks for an API key: give one with --key or TASKWIRE_API_KEY" in missing.stderr
    assert "refused the API key" in wrong.stderr
    assert "Traceback" not in missing.output + wrong.output
    assert mine.exit_code == 0 and mine.stdout.strip() == "alice: reaches its own tasks"
    assert admin.stdout.strip() == '{"keys": true, "name": "ops", "admin": true}'


def test_keys_new_makes_a_key_the_service_accepts_from_its_line(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    made = runner.invoke(app, ["keys", "new", "carol", "--admin"])
    assert made.exit_code == 0, made.output
    found = re.fullmatch(
        r"key \(shown once, keep it secret\): (\S+)\n"
        r"add this line to the keys file:   (carol [0-9a-f]{64} admin)\n",
        made.stdout,
    )
    assert found, made.stdout
    key, line = found.groups()
    assert key not in line  # the file holds the digest, never the key
    keys_file = tmp_path / "keys"
    keys_file.write_text(line + "\n")
    server = ThreadedServer(make_app(api_keys_file=keys_file))
    with server, Client(server.url, api_key=key) as client:
        identity = client.whoami()
    assert identity == Identity(keys=True, name="carol", admin=True)


def test_keys_new_refuses_a_name_a_keys_file_cannot_hold() -> None:
    refused = runner.invoke(app, ["keys", "new", "alice smith"])
    assert refused.exit_code == ExitCode.USAGE
    assert "a name is 1-64 of A-Z a-z 0-9 _ . -" in " ".join(refused.output.split())


async def test_an_async_client_given_its_own_http_client_sends_the_key(keyed: FastAPI) -> None:
    async with serve(keyed) as url, AsyncClient(url, http=httpx.AsyncClient(), api_key=OPS) as c:
        assert (await c.whoami()).name == "ops"
