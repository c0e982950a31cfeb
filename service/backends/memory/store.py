"""The task store: every task held in memory, by id, at most ``capacity`` of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from service.backend import TaskQuery
from service.errors import TaskNotFound
from service.model import Task, TaskStatus


class TaskStore:
    """A dict of tasks in creation order, plus the finished ones in the order they finished.

    Args:
        capacity: most tasks held; adding one more evicts the task that finished first.

    Notes:
        Counts by status are kept as tasks move (``moved``), so reading them costs nothing
        however many tasks are held.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tasks: dict[str, Task] = {}
        # Insertion-ordered set of finished task ids: the front finished first. It makes TTL
        # expiry and eviction cost O(removed), not O(stored).
        self._finished: dict[str, None] = {}
        self.counts: Counter[TaskStatus] = Counter(dict.fromkeys(TaskStatus, 0))

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def get(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    @property
    def is_full(self) -> bool:
        return len(self._tasks) >= self.capacity and not self._finished

    def add(self, task: Task) -> list[Task]:
        """Store ``task``, first evicting finished tasks to make room; returns the evicted."""
        evicted = []
        while len(self._tasks) >= self.capacity and self._finished:
            evicted.append(self._remove(next(iter(self._finished))))
        if len(self._tasks) >= self.capacity:
            raise RuntimeError("add() on a store full of live tasks: check is_full first")
        self._tasks[task.task_id] = task
        self.counts[task.status] += 1
        return evicted

    def moved(self, task: Task, previous: TaskStatus) -> None:
        """Record that ``task`` has moved from ``previous`` to its current status."""
        self.counts[previous] -= 1
        self.counts[task.status] += 1
        if task.status.is_finished:
            self._finished[task.task_id] = None
        else:
            self._finished.pop(task.task_id, None)

    def expire(self, finished_before: datetime, limit: int | None = None) -> list[Task]:
        """Remove and return the tasks that finished before the given time (the first
        ``limit`` of them, if given)."""
        expired: list[str] = []
        for task_id in self._finished:
            finished_at = self._tasks[task_id].finished_at
            if finished_at is None or finished_at >= finished_before:
                break
            if limit is not None and len(expired) >= limit:
                break
            expired.append(task_id)
        return [self._remove(task_id) for task_id in expired]

    def select(self, query: TaskQuery) -> list[Task]:
        """The tasks matching the query, newest first."""
        selected: list[Task] = []
        limit = query.limit
        for task in reversed(self._tasks.values()):
            if limit is not None and len(selected) >= limit:
                break
            if query.matches(task):
                selected.append(task)
        return selected

    def _remove(self, task_id: str) -> Task:
        self._finished.pop(task_id, None)
        task = self._tasks.pop(task_id)
        self.counts[task.status] -= 1
        return task
