"""The engine: submits, runs, cancels and retries tasks; the only code that moves a status.

Every move is published on the bus as one event, in the order it happened.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from service.clock import Clock, utc
from service.errors import QueueFull, StoreFull, TaskConflict
from service.model import RETRYABLE, Task, TaskError, TaskStatus
from service.queue import TaskQueue
from service.store import TaskStore
from service.tasktypes import TASK_TYPES, Submission, TaskFailedError, Work, perform
from service.worker import WorkerPool
from streams.bus import EventBus

logger = logging.getLogger("taskwire.engine")

PROGRESS_MIN_INTERVAL_S = 0.1
"""Progress events are throttled to one per task per 1% and per this interval."""


class Engine:
    """Tasks from submission to their end.

    Args:
        store, queue, bus: where tasks are kept, wait, and announce their changes.
        concurrency: how many tasks run at once.
        work_scale: multiplies every task type's base duration (0 makes work instant).
        task_timeout_s: a task still running after this long fails with ``TimeoutError``.
        clock: wall-clock seconds, for the task timestamps.
        monotonic: interval seconds, for progress throttling.
        rng: randomness of the simulated work (seed it in tests).
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        queue: TaskQueue,
        bus: EventBus,
        concurrency: int,
        work_scale: float,
        task_timeout_s: float,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.bus = bus
        self.pool = WorkerPool(queue, self._job, concurrency=concurrency)
        self._work_scale = work_scale
        self._task_timeout_s = task_timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """Tasks that ended, by type and status, since the start."""

    def start(self) -> None:
        self.pool.start()

    async def close(self) -> None:
        """Stop the workers; running tasks end ``cancelled``, queued ones stay queued."""
        await self.pool.close()

    def submit(self, submission: Submission) -> Task:
        if self.queue.is_full:
            raise QueueFull(self.queue.maxsize, self.retry_after_s())
        if self.store.is_full:
            raise StoreFull(self.store.capacity, self.retry_after_s())
        task = Task(
            task_id=str(uuid.uuid4()),
            task_type=submission.task_type,
            priority=submission.priority,
            parameters=submission.parameters.model_dump(),
            created_at=self._now(),
        )
        for evicted in self.store.add(task):
            self.bus.publish("task.expired", evicted)
        self.queue.put(task)
        self._publish(task)
        return task

    async def cancel(self, task_id: str) -> Task:
        """Cancel a queued or processing task; returns once its status is ``cancelled``."""
        task = self.store.get(task_id)
        match task.status:
            case TaskStatus.QUEUED:
                # A task a worker has just taken is no longer in the queue, but its job has
                # not started yet: it sees the status and does nothing (see _job).
                self.queue.discard(task)
                task.cancel(self._now())
                self._finished(task)
            case TaskStatus.PROCESSING if (job := self.pool.cancel(task_id)) is not None:
                await asyncio.wait({job})
                if not job.cancelled():  # it ended on its own just before the cancel landed
                    raise self._cannot_cancel(task)
            case _:
                raise self._cannot_cancel(task)
        return task

    @staticmethod
    def _cannot_cancel(task: Task) -> TaskConflict:
        return TaskConflict(
            f"task {task.task_id} is {task.status}; only queued or processing ones can be cancelled"
        )

    def retry(self, task_id: str) -> Task:
        """Queue a failed or cancelled task again, as its next attempt."""
        task = self.store.get(task_id)
        if task.status not in RETRYABLE:
            raise TaskConflict(
                f"task {task_id} is {task.status}; only failed or cancelled tasks can be retried"
            )
        if self.queue.is_full:
            raise QueueFull(self.queue.maxsize, self.retry_after_s())
        task.requeue()
        self.store.reopened(task)
        self.queue.put(task)
        self._publish(task)
        return task

    def retry_after_s(self) -> int:
        """Whole seconds until a running task is expected to end and free a place."""
        etas = [
            task.eta_s
            for task in map(self.store.get, self.pool.running_ids())
            if task.eta_s is not None
        ]
        return max(1, math.ceil(min(etas, default=1.0)))

    def _job(self, task: Task) -> Coroutine[Any, Any, None]:
        # Called by a worker the moment it takes the task; the attempt is read now, so a job
        # that starts late (after a cancel and a retry) cannot run the next attempt too.
        return self._run(task, task.attempt)

    async def _run(self, task: Task, attempt: int) -> None:
        if task.status is not TaskStatus.QUEUED or task.attempt != attempt:
            return
        params = TASK_TYPES[task.task_type].model_validate(task.parameters)
        duration_s = params.base_duration_s() * self._work_scale
        task.start(self._now(), eta_s=round(duration_s, 1))
        self._publish(task)
        work = Work(duration_s, self._progress_reporter(task, duration_s))
        try:
            async with asyncio.timeout(self._task_timeout_s):
                result = await perform(params, work, self._rng)
        except asyncio.CancelledError:
            task.cancel(self._now())
            self._finished(task)
            raise
        except TimeoutError:
            message = f"the task ran longer than its {self._task_timeout_s:g} s limit"
            task.fail(TaskError("TimeoutError", message), self._now())
        except TaskFailedError as exc:
            task.fail(TaskError("TaskFailedError", str(exc)), self._now())
        except Exception as exc:
            # A bug in a task type fails that task, visibly, and leaves the worker serving.
            logger.exception("task %s (%s) raised", task.task_id, task.task_type)
            task.fail(TaskError(type(exc).__name__, str(exc)), self._now())
        else:
            task.complete(result, self._now())
        self._finished(task)

    def _progress_reporter(self, task: Task, duration_s: float) -> Callable[[float], None]:
        last_percent, last_at = 0, -math.inf

        def report(fraction: float) -> None:
            nonlocal last_percent, last_at
            percent = min(int(fraction * 100), 99)  # 100 means completed
            task.progress = percent
            task.eta_s = round(duration_s * (1.0 - fraction), 1)
            now = self._monotonic()
            if percent > last_percent and now - last_at >= PROGRESS_MIN_INTERVAL_S:
                last_percent, last_at = percent, now
                self.bus.publish("task.progress", task)

        return report

    def _now(self) -> datetime:
        return utc(self._clock())

    def _finished(self, task: Task) -> None:
        self.outcomes[task.task_type, task.status.value] += 1
        self.store.finished(task)
        self._publish(task)

    def _publish(self, task: Task) -> None:
        self.bus.publish(f"task.{task.status}", task)
