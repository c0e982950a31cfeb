"""The task store: every task held in memory, by id, at most ``capacity`` of them."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from datetime import datetime

from service.backend import TaskQuery
from service.errors import TaskNotFound
from service.model import FINISHED, Task, TaskStatus


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
        # The finished tasks in the order they finished, the front first: TTL expiry and
        # eviction cost O(removed), not O(stored). A deque takes 8 bytes a task where a dict
        # took ~50; the price is that a retried task's old place is left in it, and counted
        # in _stale, to be skipped when it reaches the front.
        self._finished: deque[Task] = deque()
        self._stale: Counter[str] = Counter()
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
        return len(self._tasks) >= self.capacity and self._first_finished() is None

    def add(self, task: Task) -> list[Task]:
        """Store ``task``, first evicting finished tasks to make room; returns the evicted."""
        evicted = []
        while len(self._tasks) >= self.capacity and self._first_finished() is not None:
            evicted.append(self._remove_first_finished())
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
            self._finished.append(task)
        elif previous in FINISHED:  # retried: its place in _finished is out of date
            self._stale[task.task_id] += 1

    def expire(self, finished_before: datetime, limit: int | None = None) -> list[Task]:
        """Remove and return the tasks that finished before the given time (the first
        ``limit`` of them, if given)."""
        expired: list[Task] = []
        while (limit is None or len(expired) < limit) and (
            first := self._first_finished()
        ) is not None:
            if first.finished_at is None or first.finished_at >= finished_before:
                break
            expired.append(self._remove_first_finished())
        return expired

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

    def _first_finished(self) -> Task | None:
        """The task that finished first of those held, its out-of-date places dropped."""
        while self._finished:
            first = self._finished[0]
            stale = self._stale.get(first.task_id)
            if not stale:
                return first
            if stale == 1:
                del self._stale[first.task_id]
            else:
                self._stale[first.task_id] = stale - 1
            self._finished.popleft()
        return None

    def _remove_first_finished(self) -> Task:
        task = self._finished.popleft()
        del self._tasks[task.task_id]
        self.counts[task.status] -= 1
        return task
