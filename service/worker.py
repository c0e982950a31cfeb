"""The worker pool: a fixed number of workers claiming tasks from the backend and running them."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from service.backend import Claim
from service.settings import Settings, load_settings

logger = logging.getLogger("taskwire.worker")

Handler = Callable[[Claim], Coroutine[Any, Any, None]]


class WorkerPool:
    """``concurrency`` workers, run together under ``asyncio.gather``.

    Each job runs as its own asyncio task, kept by task id, so ``cancel`` can stop one job
    without stopping the worker that waits on it. The handler is expected to record every
    outcome through the backend; an exception escaping it is a bug and is logged.

    Args:
        claim: waits for the next task to run, and claims it.
        handler: runs one claimed task to its end.
        concurrency: how many tasks run at once.
    """

    def __init__(
        self, claim: Callable[[], Awaitable[Claim]], handler: Handler, *, concurrency: int
    ) -> None:
        self._claim = claim
        self._handler = handler
        self._concurrency = concurrency
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._runner: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        return len(self._jobs)

    def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the pool is already started")
        self._runner = asyncio.create_task(self._run(), name="taskwire workers")

    async def _run(self) -> None:
        await asyncio.gather(*(self._work() for _ in range(self._concurrency)))

    def cancel(self, task_id: str) -> asyncio.Task[None] | None:
        """Cancel the job running ``task_id``; returns it (to await) or None if none runs here."""
        job = self._jobs.get(task_id)
        if job is not None:
            # Soon, not now: a job cancelled before its first step would never run at all,
            # and so never record the end of its claimed task. Its first step is already
            # scheduled, so it starts, and takes the cancel at its first await.
            asyncio.get_running_loop().call_soon(_cancel_once, job)
        return job

    async def close(self) -> None:
        """Stop taking tasks, cancel the running jobs and wait until each has ended."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            claim = await self._claim()
            task_id = claim.task.task_id
            job = asyncio.create_task(self._handler(claim), name=f"task {task_id}")
            self._jobs[task_id] = job
            job.add_done_callback(partial(self._forget, task_id))
            # wait() rather than await: a cancelled job must not cancel its worker.
            await asyncio.wait({job})

    def _forget(self, task_id: str, job: asyncio.Task[None]) -> None:
        if self._jobs.get(task_id) is job:
            del self._jobs[task_id]
        if not job.cancelled() and (error := job.exception()) is not None:
            logger.error("job for task %s crashed", task_id, exc_info=error)


def _cancel_once(job: asyncio.Task[None]) -> None:
    """Cancel ``job`` unless it is already on its way out: a second request to stop (a cancel
    heard twice: from the DELETE in this process, then from the stream) would interrupt the
    job while it records its end."""
    if not job.cancelling():
        job.cancel()


async def run_worker(settings: Settings) -> None:
    """Run tasks, with no HTTP server, until SIGTERM or SIGINT (``taskwire worker``).

    Only with a shared backend: with ``memory://`` nobody could submit to this process.
    Running tasks are released on the way out (back to the queue, for another worker).
    """
    from service.backends import open_backend
    from service.cleanup import Cleanup
    from service.engine import Engine

    backend = open_backend(settings)
    engine = Engine(
        backend,
        concurrency=settings.concurrency,
        work_scale=settings.work_scale,
        task_timeout_s=settings.task_timeout_s,
    )
    cleanup = Cleanup(
        backend, ttl_s=settings.result_ttl_s, interval_s=min(1.0, settings.result_ttl_s)
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await backend.start()
    engine.start()
    sweeping = asyncio.create_task(cleanup.run(), name="taskwire cleanup")
    logger.info("worker started: %d at once, backend %s", settings.concurrency, backend.name)
    try:
        await stopping.wait()
    finally:
        sweeping.cancel()
        await asyncio.gather(sweeping, return_exceptions=True)
        await engine.close()
        await backend.close()
        logger.info("worker stopped")


def main() -> None:
    """``python -m service.worker``: settings from the environment, logs to stderr."""
    settings = load_settings()
    if settings.backend_scheme == "memory":
        raise SystemExit(
            "taskwire: a worker process needs a shared backend (TASKWIRE_BACKEND=redis://…); "
            "with memory:// the API process runs its own tasks"
        )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # The event loop uvicorn picks for the API processes: uvloop where it is installed
    # (uvicorn[standard] brings it), else asyncio's own.
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it on Linux and macOS
        asyncio.run(run_worker(settings))
    else:
        uvloop.run(run_worker(settings))


if __name__ == "__main__":
    main()
