"""The Redis backend (``TASKWIRE_BACKEND=redis://…``): one service over many processes.

Needs the ``redis`` extra (``pip install 'taskwire[redis]'``); only imported when chosen.
"""

from service.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
