"""The engine: the rules of a task's life, on top of a backend that keeps its state.

It turns a validated submission into a task, runs claimed tasks (the simulated work, its
progress, its timeout) and cancels running ones; every move of a status is one atomic
transition of the backend, which records its event.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from service.backend import Backend, Claim, RateCheck
from service.clock import Clock, utc
from service.errors import BackendUnavailable, LeaseLost, TaskConflict
from service.events import Event, EventFilter
from service.idempotency import Idempotency
from service.model import (
    OwnedTask,
    Task,
    TaskError,
    TaskStatus,
    new_task_id,
    task_from_json,
    task_json,
)
from service.tasktypes import TASK_TYPES, Submission, TaskFailedError, Work, perform
from service.worker import WorkerPool

logger = logging.getLogger("taskwire.engine")

PROGRESS_MIN_INTERVAL_S = 0.1
"""Progress events are throttled to one per task per 1% and per this interval."""
PROGRESS_BYTES_PER_STEP = 16 * 1024
"""A large task reports progress in coarser steps: one percent per this many bytes of its
JSON (at most 25%), so its progress events, each carrying the whole task, add up to about
100 times this at most, whatever its size."""


class Engine:
    """Tasks from submission to their end.

    Args:
        backend: where tasks, the queue and the events live.
        concurrency: how many tasks this process runs at once.
        work_scale: multiplies every task type's base duration (0 makes work instant).
        task_timeout_s: a task still running after this long fails with ``TimeoutError``.
        clock: wall-clock seconds, for the task timestamps.
        monotonic: interval seconds, for progress throttling.
        rng: randomness of the simulated work (seed it in tests).
        on_ended: told of every task this process ended (for metrics).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        concurrency: int,
        work_scale: float,
        task_timeout_s: float,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        rng: random.Random | None = None,
        on_ended: Callable[[Task], object] | None = None,
    ) -> None:
        self._backend = backend
        self._on_ended = on_ended
        self.pool = WorkerPool(backend.claim, self._run, concurrency=concurrency)
        backend.on_cancel(self.pool.cancel)
        self._work_scale = work_scale
        self._task_timeout_s = task_timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """Tasks this process ended, by type and status, since it started."""
        self._closing = False
        self._held: dict[str, tuple[Claim, asyncio.Task[None]]] = {}
        """The claims running here, by lease token, with their jobs (leased backends)."""
        self._lost: set[str] = set()
        """Tokens of the claims whose lease was lost while their job ran."""
        self._leases: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start taking tasks from the queue."""
        self.pool.start()
        if self._backend.lease_s is not None:
            self._leases = asyncio.create_task(
                self._keep_leases(self._backend.lease_s), name="taskwire leases"
            )

    async def close(self) -> None:
        """Stop the workers. Running tasks are released (see ``Backend.release``): back to
        the queue where the backend outlives this process, else ``cancelled``."""
        self._closing = True
        await self.pool.close()
        if self._leases is not None:
            self._leases.cancel()
            await asyncio.gather(self._leases, return_exceptions=True)

    async def submit(
        self,
        submission: Submission,
        *,
        owner: str | None = None,
        idempotency: Idempotency | None = None,
        rate: RateCheck | None = None,
    ) -> Task:
        """Queue a new task (``owner``'s, with API keys); with ``idempotency``, its key is
        recorded with it; with ``rate``, the request is counted first, in the same step."""
        params = submission.parameters
        fields: dict[str, Any] = {
            "task_id": new_task_id(),
            "task_type": submission.task_type,
            "priority": submission.priority,
            "parameters": params.model_dump(),
            "created_at": utc(self._clock()),
        }
        task = Task(**fields) if owner is None else OwnedTask(**fields, owner=owner)
        planned_s = params.base_duration_s() * self._work_scale
        return await self._backend.submit(
            task, planned_s=planned_s, idempotency=idempotency, rate=rate
        )

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued or processing task; returns once its status is ``cancelled``."""
        bus = self._backend.bus
        only_this = EventFilter(task_id=task_id)
        # Subscribed first, so the end of a task that runs elsewhere cannot slip past.
        async with bus.subscribe(only_this, kind="cancel") as events:
            cancelling = await self._backend.cancel(task_id)
            if not cancelling.running:
                self._count(cancelling.task)
                return cancelling.task
            # Its worker, here or in another process, stops it and records the end: the
            # answer is that end, as its event tells it (read again, the task might already
            # be retried, or evicted).
            end = await _until_finished(events)
        task = task_from_json(end.data) if end else await self._backend.get(task_id)
        while not task.status.is_finished and not bus.closed:
            # The subscription ended first: this process missed events and reset its
            # subscribers. Wait again, on a new one (the end may have come meanwhile).
            async with bus.subscribe(only_this, kind="cancel") as events:
                task = await self._backend.get(task_id)
                if not task.status.is_finished and (end := await _until_finished(events)):
                    task = task_from_json(end.data)
        if task.status is not TaskStatus.CANCELLED:  # it ended on its own just before
            raise TaskConflict(
                f"task {task_id} is {task.status}; only queued or processing ones can be cancelled"
            )
        return task

    async def retry(self, task_id: str) -> Task:
        """Queue a failed or cancelled task again, as its next attempt."""
        return await self._backend.retry(task_id)

    async def _run(self, claim: Claim) -> None:
        if self._backend.lease_s is None:
            await self._work(claim)
            return
        job = asyncio.current_task()
        assert job is not None
        self._held[claim.token] = (claim, job)
        try:
            await self._work(claim)
        finally:
            self._held.pop(claim.token, None)
            self._lost.discard(claim.token)

    async def _keep_leases(self, lease_s: float) -> None:
        """Renew the lease of every task running here three times per lease, all at once (one
        round trip for them all), rather than a timer task for each job."""
        while True:
            await asyncio.sleep(lease_s / 3)
            await asyncio.gather(*(self._renew(claim, job) for claim, job in self._held.values()))

    async def _renew(self, claim: Claim, job: asyncio.Task[None]) -> None:
        """Renew one lease; if it was lost, stop its job (another worker may hold the task)."""
        try:
            await self._backend.renew(claim)
        except LeaseLost:
            if claim.token in self._held:  # not merely ended meanwhile
                logger.warning("task %s: the lease was lost; stopping it here", claim.task.task_id)
                self._lost.add(claim.token)
                job.cancel()
        except BackendUnavailable as exc:  # the lease may still hold: try again
            logger.warning("task %s: could not renew its lease: %s", claim.task.task_id, exc)
        except Exception:  # a bug: logged, and the other leases still kept
            logger.exception("task %s: renewing its lease failed", claim.task.task_id)

    async def _work(self, claim: Claim) -> None:
        task = claim.task
        params = TASK_TYPES[task.task_type].model_validate(task.parameters)
        duration_s = params.base_duration_s() * self._work_scale
        work = Work(duration_s, self._progress_reporter(claim, duration_s))
        finish = self._finish
        try:
            async with asyncio.timeout(self._task_timeout_s):
                result = await perform(params, work, self._rng)
        except asyncio.CancelledError:
            if claim.token in self._lost:
                pass  # another worker holds the task now: nothing of ours to write
            elif self._closing:
                await self._end(claim, self._backend.release(claim))
            else:
                await self._end(claim, finish(claim, TaskStatus.CANCELLED))
            raise
        except TimeoutError:
            message = f"the task ran longer than its {self._task_timeout_s:g} s limit"
            error = TaskError("TimeoutError", message)
            await self._end(claim, finish(claim, TaskStatus.FAILED, error=error))
        except TaskFailedError as exc:
            error = TaskError("TaskFailedError", str(exc))
            await self._end(claim, finish(claim, TaskStatus.FAILED, error=error))
        except (LeaseLost, BackendUnavailable) as exc:
            # Its lease will run out and the task go back to the queue; nothing to write.
            logger.warning("task %s stopped here: %s", task.task_id, exc)
        except Exception as exc:
            # A bug in a task type fails that task, visibly, and leaves the worker serving.
            logger.exception("task %s (%s) raised", task.task_id, task.task_type)
            error = TaskError(type(exc).__name__, str(exc))
            await self._end(claim, finish(claim, TaskStatus.FAILED, error=error))
        else:
            await self._end(claim, finish(claim, TaskStatus.COMPLETED, result=result))

    def _finish(
        self, claim: Claim, status: TaskStatus, **outcome: Any
    ) -> Coroutine[Any, Any, Task]:
        """The claim's end; unless this engine is closing, its worker is free for the next
        task, which the backend may claim in the same step (``then_claim``)."""
        return self._backend.finish(claim, status, then_claim=not self._closing, **outcome)

    async def _end(self, claim: Claim, finishing: Coroutine[Any, Any, Task]) -> None:
        # Its end is on its way: the lease needs no renewal now, and a renewal already sent
        # that the backend refuses (it ran the end first) is no reason to stop this job.
        self._held.pop(claim.token, None)
        try:
            task = await finishing
        except (LeaseLost, BackendUnavailable) as exc:
            logger.warning("a task's end could not be recorded here: %s", exc)
        else:
            if task.status.is_finished:
                self._count(task)

    def _count(self, task: Task) -> None:
        self.outcomes[task.task_type, task.status.value] += 1
        if self._on_ended is not None:
            self._on_ended(task)

    def _progress_reporter(
        self, claim: Claim, duration_s: float
    ) -> Callable[[float], Awaitable[None]]:
        last_percent, last_at = 0, -math.inf
        step = 0  # sized at the first report: most tasks of instant work never make one

        async def report(fraction: float) -> None:
            nonlocal last_percent, last_at, step
            if not step:
                step = progress_step(len(task_json(claim.task)))
            percent = min(int(fraction * 100), 99)  # 100 means completed
            now = self._monotonic()
            if percent >= last_percent + step and now - last_at >= PROGRESS_MIN_INTERVAL_S:
                last_percent, last_at = percent, now
                eta_s = round(duration_s * (1.0 - fraction), 1)
                try:
                    await self._backend.progress(claim, percent=percent, eta_s=eta_s)
                except BackendUnavailable as exc:  # a report missed; the work goes on
                    logger.warning("task %s: progress not recorded: %s", claim.task.task_id, exc)

        return report


async def _until_finished(events: AsyncIterator[Event]) -> Event | None:
    """The event that says the task has finished; None if the subscription ends first."""
    async for event in events:
        if event.status.is_finished:
            return event
    return None


def progress_step(task_bytes: int) -> int:
    """The smallest move of progress, in percent, worth an event for a task of this size."""
    return min(25, max(1, math.ceil(task_bytes / PROGRESS_BYTES_PER_STEP)))
