from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from service.backend import Claim
from service.backends.memory.queue import TaskQueue
from service.model import Task
from service.worker import WorkerPool
from tests.support import FAILSAFE_S


def make(task_id: str) -> Task:
    return Task(
        task_id=task_id, task_type="compute_sum", parameters={}, created_at=datetime.now(UTC)
    )


def claims_from(queue: TaskQueue) -> Callable[[], Coroutine[Any, Any, Claim]]:
    """A claim function over a bare queue: each task taken is a claim."""

    async def claim() -> Claim:
        task = await queue.get()
        return Claim(task, f"token-{task.task_id}")

    return claim


class Gate:
    """A handler whose jobs block until released, recording what ran, how it ended, every
    start and end in order, and the most jobs it ever held at once."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: dict[str, str] = {}
        self.log: list[tuple[str, str]] = []
        self.inside = 0
        self.most = 0
        self.release = asyncio.Event()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def __call__(self, claim: Claim) -> Coroutine[Any, Any, None]:
        return self._run(claim)

    async def _run(self, claim: Claim) -> None:
        task_id = claim.task.task_id
        self.started.append(task_id)
        self.inside += 1
        self.most = max(self.most, self.inside)
        self._note("start", task_id)
        try:
            await self.release.wait()
            if task_id == "crash":
                raise RuntimeError("handler bug")
            self.ended[task_id] = "done"
        except asyncio.CancelledError:
            self.ended[task_id] = "cancelled"
            raise
        finally:
            self.inside -= 1
            self._note("end", task_id)

    def _note(self, what: str, task_id: str) -> None:
        self.log.append((what, task_id))
        for condition, waiter in self._waiters:
            if not waiter.done() and condition():
                waiter.set_result(None)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked each time a job starts or ends."""
        if condition():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, waiter))
        try:
            async with asyncio.timeout(FAILSAFE_S):
                await waiter
        finally:
            self._waiters.remove((condition, waiter))


async def test_runs_at_most_concurrency_jobs_and_then_the_rest() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(claims_from(queue), gate, concurrency=2)
    for n in range(4):
        queue.put(make(f"t{n}"))
    pool.start()
    try:
        await gate.wait_for(lambda: len(gate.started) == 2)
        # Both workers now wait on a blocked job, so no third task can be taken.
        assert gate.started == ["t0", "t1"] and pool.running == 2 and len(queue) == 2
        gate.release.set()
        await gate.wait_for(lambda: len(gate.ended) == 4)
    finally:
        await pool.close()
    assert gate.ended == {f"t{n}": "done" for n in range(4)}
    # Over the whole run, never more than two at once: the last two each started only after
    # an earlier job had ended.
    assert gate.most == 2
    first_end = next(i for i, (what, _) in enumerate(gate.log) if what == "end")
    assert gate.log.index(("start", "t2")) > first_end
    assert pool.running == 0


async def test_cancel_stops_one_job_and_its_worker_takes_the_next_task() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(claims_from(queue), gate, concurrency=1)
    queue.put(make("a"))
    queue.put(make("b"))
    pool.start()
    try:
        await gate.wait_for(lambda: gate.started == ["a"])
        assert len(queue) == 1  # the one worker is busy with "a"
        job = pool.cancel("a")
        assert job is not None
        await asyncio.wait({job})
        assert job.cancelled()
        assert gate.ended == {"a": "cancelled"}
        await gate.wait_for(lambda: gate.started == ["a", "b"])
        assert pool.cancel("nope") is None
    finally:
        await pool.close()


async def test_a_job_asked_to_stop_twice_is_stopped_once_and_ends_its_own_way() -> None:
    # A cancel heard twice (from the DELETE here, then from the stream): the second must not
    # interrupt the first one's way out, where the job records its end.
    queue = TaskQueue(10)
    started, stopping = asyncio.Event(), asyncio.Event()
    recorded, ending = asyncio.Event(), asyncio.Event()

    async def handler(claim: Claim) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await ending.wait()  # its end on its way to the backend
            recorded.set()
            raise

    pool = WorkerPool(claims_from(queue), handler, concurrency=1)
    queue.put(make("a"))
    pool.start()
    try:
        async with asyncio.timeout(FAILSAFE_S):
            await started.wait()
            job = pool.cancel("a")
            assert job is not None
            await stopping.wait()
            assert pool.cancel("a") is job
            await asyncio.sleep(0)  # the second request is delivered (call_soon): a no-op
            ending.set()
            await asyncio.wait({job})
        assert recorded.is_set() and job.cancelled()
    finally:
        await pool.close()


async def test_a_crashing_handler_is_logged_and_its_worker_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(claims_from(queue), gate, concurrency=1)
    logging.getLogger("taskwire.worker").addHandler(caplog.handler)
    try:
        gate.release.set()
        queue.put(make("crash"))
        queue.put(make("after"))
        pool.start()
        await gate.wait_for(lambda: "after" in gate.ended)
    finally:
        logging.getLogger("taskwire.worker").removeHandler(caplog.handler)
        await pool.close()
    assert gate.started == ["crash", "after"]
    assert "job for task crash crashed" in caplog.text
    assert "RuntimeError: handler bug" in caplog.text


async def test_close_cancels_running_jobs_waits_for_them_and_leaves_the_queue() -> None:
    queue, gate = TaskQueue(10), Gate()
    pool = WorkerPool(claims_from(queue), gate, concurrency=2)
    for n in range(3):
        queue.put(make(f"t{n}"))
    pool.start()
    await gate.wait_for(lambda: len(gate.started) == 2)
    await pool.close()
    assert gate.ended == {"t0": "cancelled", "t1": "cancelled"}
    assert pool.running == 0 and len(queue) == 1
    assert gate.started == ["t0", "t1"]


async def test_start_twice_is_an_error() -> None:
    pool = WorkerPool(claims_from(TaskQueue(1)), Gate(), concurrency=1)
    pool.start()
    try:
        with pytest.raises(RuntimeError):
            pool.start()
    finally:
        await pool.close()
