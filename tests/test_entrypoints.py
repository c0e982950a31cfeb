"""The two ways to run Taskwire, as real processes: ``uvicorn asgi:app`` and gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import tomllib

import httpx
import pytest

from tests.processes import BIN, ROOT, children, command, exited_within, free_port, spawn


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_serves_the_api_and_stops_on_sigterm(server: str) -> None:
    with spawn(server, TASKWIRE_WORK_SCALE="0") as (url, process):
        body = {"task_type": "compute_sum", "parameters": {"numbers": [2, 3]}}
        submitted = httpx.post(f"{url}/tasks", json=body)
        assert submitted.status_code == 202
        assert submitted.headers["ratelimit-policy"] == '"per-ip";q=10;w=60'  # the default holds
        task = submitted.json()
        while task["status"] != "completed":
            task = httpx.get(f"{url}/tasks/{task['task_id']}", params={"wait": "true"}).json()
        assert task["result"] == {"sum": 5}
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly; gunicorn exits 0.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
        assert process.stderr is not None
        log = process.stderr.read().decode()
    assert "Application shutdown complete" in log or "Shutting down: Master" in log
    assert '"POST /tasks" 202' in log  # Taskwire's own access line


def test_gunicorn_s_workers_stop_when_its_master_is_killed() -> None:
    # A master lost to kill -9 (or the OOM killer) must not leave workers serving unsupervised.
    with spawn("gunicorn", TASKWIRE_WORK_SCALE="0") as (url, process):
        (worker,) = children(process.pid)
        process.kill()
        assert exited_within(worker, timeout_s=10)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz")


def test_the_container_image_copies_every_package_and_module_pyproject_installs() -> None:
    # There is no Docker engine to build the image with here; this keeps its COPY lines in
    # step with the packaging, the one thing that drifts when a module is added.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    packages = {name.rstrip("*") for name in setuptools["packages"]["find"]["include"]}
    needed = {f"{name}/" for name in packages}
    needed |= {f"{name}.py" for name in setuptools["py-modules"]}
    needed |= {"pyproject.toml", "README.md", "gunicorn.conf.py"}
    copied = {
        source
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }
    assert needed <= copied, f"the Dockerfile does not copy {sorted(needed - copied)}"
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not {name.rstrip("/") for name in needed} & ignored


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_a_bad_setting_stops_the_process_with_a_message_naming_it(server: str) -> None:
    port = free_port()
    env = {**os.environ, "TASKWIRE_MAX_QUEUE": "-1", "PORT": str(port)}
    finished = subprocess.run(
        command(server, port), cwd=ROOT, env=env, capture_output=True, text=True, timeout=20
    )
    assert finished.returncode != 0
    assert "invalid setting TASKWIRE_MAX_QUEUE='-1'" in finished.stderr
    assert "Booting worker" not in finished.stderr  # gunicorn stops before starting any


@pytest.mark.parametrize(
    ("argv", "settings", "message"),
    [
        pytest.param(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            {"WEB_CONCURRENCY": "2"},
            "WEB_CONCURRENCY=2 needs a shared backend",
            id="gunicorn-two-workers-on-memory",
        ),
        pytest.param(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            {"WEB_CONCURRENCY": "0"},
            "invalid setting WEB_CONCURRENCY='0'",
            id="gunicorn-no-workers",
        ),
        pytest.param(
            [str(BIN / "taskwire"), "worker"],
            {},
            "a worker process needs a shared backend",
            id="worker-on-memory",
        ),
        pytest.param(
            [str(BIN / "uvicorn"), "asgi:app"],
            {"TASKWIRE_WORKERS": "false"},
            "TASKWIRE_WORKERS=false needs a shared backend",
            id="no-workers-on-memory",
        ),
        pytest.param(
            [str(BIN / "taskwire"), "serve"],
            {"TASKWIRE_BACKEND": "postgres://db"},
            "invalid setting TASKWIRE_BACKEND='postgres://db'",
            id="serve-unknown-backend",
        ),
    ],
)
def test_a_process_that_could_not_work_as_configured_refuses_to_start(
    argv: list[str], settings: dict[str, str], message: str
) -> None:
    port = free_port()
    env = {**os.environ, **settings, "PORT": str(port), "BIND": f"127.0.0.1:{port}"}
    finished = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert finished.returncode != 0
    assert message in finished.stderr
    assert "Booting worker" not in finished.stderr


def test_uvicorn_s_workers_refusing_to_start_stop_its_supervisor_too() -> None:
    # WEB_CONCURRENCY is uvicorn's --workers: its children import the app and refuse; they
    # exit with uvicorn's startup-failure status, so the supervisor stops instead of starting
    # them again for ever (it exits 0 all the same: uvicorn's choice).
    env = {**os.environ, "WEB_CONCURRENCY": "2"}
    argv = [str(BIN / "uvicorn"), "asgi:app", "--port", "0"]
    finished = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert "WEB_CONCURRENCY=2 needs a shared backend" in finished.stderr
    assert "failed to start, stopping the parent process" in finished.stderr
    assert "died" not in finished.stderr  # never started again


def test_the_entry_point_freezes_the_code_and_collects_young_objects_less_often() -> None:
    # The servers import asgi.py; what it sets up is the process's, so it is read from one.
    probe = "import asgi, gc; print(gc.get_freeze_count() > 10_000, gc.get_threshold())"
    env = {**os.environ, "TASKWIRE_LOG_LEVEL": "warning"}
    out = subprocess.run(
        [str(BIN / "python"), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True (10000, 10, 10)"
