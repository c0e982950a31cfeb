from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from service.model import Task
from service.queue import TaskQueue
from service.worker import WorkerPool
from tests.support import until


def make(task_id: str) -> Task:
    return Task(
        task_id=task_id, task_type="compute_sum", parameters={}, created_at=datetime.now(UTC)
    )


class Gate:
    """A handler whose jobs block until released, recording what ran and how it ended."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: dict[str, str] = {}
        self.release = asyncio.Event()

    def __call__(self, task: Task) -> Coroutine[Any, Any, None]:
        return self._run(task)

    async def _run(self, task: Task) -> None:
        self.started.append(task.task_id)
        try:
            await self.release.wait()
            if task.task_id == "crash":
                raise RuntimeError("handler bug")
            self.ended[task.task_id] = "done"
        except asyncio.CancelledError:
            self.ended[task.task_id] = "cancelled"
            raise


async def test_runs_at_most_concurrency_jobs_and_then_the_rest() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(queue, gate, concurrency=2)
    for n in range(4):
        queue.put(make(f"t{n}"))
    pool.start()
    await until(lambda: len(gate.started) == 2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert gate.started == ["t0", "t1"] and pool.running == 2 and len(queue) == 2
    gate.release.set()
    await until(lambda: len(gate.ended) == 4)
    assert gate.ended == {f"t{n}": "done" for n in range(4)}
    await pool.close()


async def test_cancel_stops_one_job_and_its_worker_takes_the_next_task() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(queue, gate, concurrency=1)
    queue.put(make("a"))
    queue.put(make("b"))
    pool.start()
    await until(lambda: gate.started == ["a"])
    job = pool.cancel("a")
    assert job is not None
    await asyncio.wait({job})
    assert gate.ended == {"a": "cancelled"}
    await until(lambda: gate.started == ["a", "b"])
    assert pool.cancel("nope") is None
    await pool.close()


async def test_a_crashing_handler_is_logged_and_its_worker_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(queue, gate, concurrency=1)
    logging.getLogger("taskwire.worker").addHandler(caplog.handler)
    try:
        gate.release.set()
        queue.put(make("crash"))
        queue.put(make("after"))
        pool.start()
        await until(lambda: "after" in gate.ended)
    finally:
        logging.getLogger("taskwire.worker").removeHandler(caplog.handler)
        await pool.close()
    assert "job for task crash crashed" in caplog.text
    assert "RuntimeError: handler bug" in caplog.text


async def test_close_cancels_running_jobs_waits_for_them_and_leaves_the_queue() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(queue, gate, concurrency=2)
    for n in range(3):
        queue.put(make(f"t{n}"))
    pool.start()
    await until(lambda: len(gate.started) == 2)
    await pool.close()
    assert gate.ended == {"t0": "cancelled", "t1": "cancelled"}
    assert pool.running == 0 and len(queue) == 1


async def test_start_twice_is_an_error() -> None:
    pool = WorkerPool(TaskQueue(1), Gate(), concurrency=1)
    pool.start()
    with pytest.raises(RuntimeError):
        pool.start()
    await pool.close()
