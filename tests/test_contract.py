"""The OpenAPI document is a contract: schemathesis fuzzes the running service against it.

Every check runs but ``use_after_free``: it assumes a successful DELETE removes the resource,
while in Taskwire (SPEC §2) DELETE cancels a task, which stays readable and retryable.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.processes import BIN, ROOT, spawn


@pytest.mark.timeout(300)
def test_schemathesis_finds_nothing() -> None:
    settings = {
        "TASKWIRE_WORK_SCALE": "0",
        "TASKWIRE_RATE_LIMIT": "0",
        "TASKWIRE_LOG_LEVEL": "warning",
    }
    with spawn("uvicorn", **settings) as (url, _):
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--checks=all",
                "--exclude-checks=use_after_free",
                "--seed=20261122",
                "--max-examples=40",
                "--no-color",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=280,
        )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
