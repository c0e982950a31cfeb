"""The OpenAPI document is a contract: schemathesis fuzzes the running service against it.

Every check runs but ``use_after_free``: it assumes a successful DELETE removes the resource,
while in Taskwire (SPEC §2) DELETE cancels a task, which stays readable and retryable. The
endless streams (``/events``, and ``?watch=true`` through ``schemathesis_hooks``) are left to
``tests/streams``: a fuzzer reads a body to its end, and theirs has none.
"""

from __future__ import annotations

import os
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
                "--exclude-path=/events",
                "--request-timeout=20",
                "--seed=20261122",
                "--max-examples=40",
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
