"""The queue: tasks waiting for a worker, ``high`` before ``normal`` before ``low``."""

from __future__ import annotations

import asyncio
from collections import deque

from service.model import PRIORITIES, Priority, Task


class TaskQueue:
    """A bounded priority queue, FIFO within a priority, from which a queued task can be removed.

    Args:
        maxsize: most tasks waiting at once; ``is_full`` tells callers to refuse more.

    Notes:
        ``asyncio.PriorityQueue`` cannot remove an entry, so a cancelled task would keep
        counting against ``maxsize`` until a worker skipped it. Here each priority is a
        deque and a semaphore counts puts; a removal leaves one spare permit, which makes
        a worker loop once and wait again.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lanes: dict[Priority, deque[Task]] = {priority: deque() for priority in PRIORITIES}
        self._size = 0
        self._available = asyncio.Semaphore(0)

    def __len__(self) -> int:
        return self._size

    @property
    def is_full(self) -> bool:
        return self._size >= self.maxsize

    def put(self, task: Task) -> None:
        if self.is_full:
            raise RuntimeError("put() on a full queue: check is_full first")
        self._lanes[task.priority].append(task)
        self._size += 1
        self._available.release()

    def discard(self, task: Task) -> bool:
        """Take ``task`` out of the queue; False if it was not waiting there."""
        try:
            self._lanes[task.priority].remove(task)
        except ValueError:
            return False
        self._size -= 1
        return True

    async def get(self) -> Task:
        while True:
            await self._available.acquire()
            for lane in self._lanes.values():
                if lane:
                    self._size -= 1
                    return lane.popleft()
