"""The memory backend (``TASKWIRE_BACKEND=memory://``, the default): state in this process."""

from service.backends.memory.backend import MemoryBackend

__all__ = ["MemoryBackend"]
