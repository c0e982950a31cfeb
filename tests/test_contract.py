"""The OpenAPI document is a contract: schemathesis fuzzes the running service against it.

Every check runs but ``use_after_free``: it assumes a successful DELETE removes the resource,
while in Taskwire (SPEC §2) DELETE cancels a task, which stays readable and retryable. The
endless streams (``/events``, and ``?watch=true`` through ``schemathesis_hooks``) are left to
``tests/streams``: a fuzzer reads a body to its end, and theirs has none.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from service.access import new_key
from tests.processes import BIN, ROOT, spawn


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("keys", "backend"),
    [
        pytest.param(False, "memory", id="open"),
        pytest.param(True, "memory", id="with-an-api-key"),
        pytest.param(False, "redis", id="on-redis"),
    ],
)
def test_schemathesis_finds_nothing(
    keys: bool, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = {
        "TASKWIRE_WORK_SCALE": "0",
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_LOG_LEVEL": "warning",
    }
    if backend == "redis":  # the same contract, kept by the other backend
        settings["TASKWIRE_BACKEND"] = request.getfixturevalue("redis_url")
        settings["TASKWIRE_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    config = []
    if keys:  # every operation then asks for a key, which schemathesis knows to send
        key, line = new_key("fuzzer")
        (tmp_path / "keys").write_text(line + "\n")
        settings["TASKWIRE_API_KEYS_FILE"] = str(tmp_path / "keys")
        (tmp_path / "schemathesis.toml").write_text(
            f'[auth.openapi.bearer]\nbearer = "{key}"\n'
            f'[auth.openapi.accessToken]\napi_key = "{key}"\n'
        )
        config = ["--config-file", str(tmp_path / "schemathesis.toml")]
    with spawn("uvicorn", **settings) as (url, _):
        health = httpx.get(f"{url}/healthz").json()
        assert health["backend"].startswith(backend)
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                *config,
                "run",
                f"{url}/openapi.json",
                "--checks=all",
                "--exclude-checks=use_after_free",
                "--exclude-path=/events",
                "--request-timeout=20",
                "--seed=20261122",
                f"--max-examples={20 if keys else 40}",
                "--no-color",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            },
            capture_output=True,
            text=True,
            timeout=280,
        )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "Network Error" not in result.stdout
