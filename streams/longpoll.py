"""Long-polling: answer with a task once its status changes, or when time runs out."""

from __future__ import annotations

import asyncio

from service.model import Task
from service.store import TaskStore
from streams.bus import EventBus, EventFilter


async def wait_for_status_change(
    store: TaskStore, bus: EventBus, task_id: str, timeout_s: float
) -> Task:
    """The task once its status differs from now (progress alone does not count).

    Returns at once for a finished task, and after ``timeout_s`` or when the bus closes
    (server shutdown) with the task as it is then. A waiter is one subscriber parked on a
    future: it costs no CPU until an event for its task arrives.
    """
    task = store.get(task_id)
    if task.status.is_finished:
        return task
    initial = task.status
    # No await between reading the status and subscribing, so no change can slip between.
    async with bus.subscribe(EventFilter(task_id=task_id)) as subscriber:
        try:
            async with asyncio.timeout(timeout_s):
                async for event in subscriber:
                    if event.status is not initial or event.name == "task.expired":
                        break
        except TimeoutError:
            pass
    return store.get(task_id)
