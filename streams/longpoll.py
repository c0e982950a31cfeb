"""Long-polling: answer with a task once its status changes, or when time runs out."""

from __future__ import annotations

from collections.abc import Callable

from service.backend import Backend
from service.events import EventBus, EventFilter
from service.model import Task, task_json


async def wait_for_status_change(
    backend: Backend,
    bus: EventBus,
    task_id: str,
    timeout_s: float,
    *,
    check: Callable[[Task], object] | None = None,
) -> bytes:
    """The task's JSON once its status differs from now (progress alone does not count).

    Returns at once for a finished task, and after ``timeout_s`` or when the bus closes
    (server shutdown) with the task as it is then (``TaskNotFound`` if it has expired by
    then). ``check`` may refuse the task once read (raising). A waiter is one subscriber parked on a
    future, its timeout one entry among the bus's deadlines (no timer of its own): it costs
    no CPU until an event for its task arrives, and the answer is that event's own data,
    encoded once for every waiter, with no second read of the task.
    """
    # Subscribed before the task is read, so a change right after the read cannot slip by.
    waiting = bus.subscribe(EventFilter(task_id=task_id), kind="longpoll", for_s=timeout_s)
    async with waiting as subscriber:
        task, as_of = await backend.read(task_id)
        if check is not None:
            check(task)
        if task.status.is_finished:
            return task_json(task)
        subscriber.catch_up(as_of)  # the events the read already shows are no change
        initial = task.status
        async for event in subscriber:  # until the time is up or the bus closes
            if event.status is not initial:  # (a task expires only once finished)
                return event.data
    return task_json(await backend.get(task_id))
