"""Shutdown: start draining the moment the server is told to stop, not once it has stopped.

An ASGI server runs the lifespan's shutdown only after every connection has closed, and a
stream or a long-poll does not close by itself: without a hint, SIGTERM would wait on them.
No part of ASGI says "shutdown has begun", so at startup the process's SIGTERM and SIGINT
handlers (uvicorn's, also under gunicorn's UvicornWorker) are chained with a hook that sets
an event; the lifespan then drains: running tasks are cancelled (each with its event) and the
bus closes, which ends every stream and answers every long-poll. The server's own handler
still runs, so it stops as it always would, just without waiting on idle streams.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def exit_signal(stopping: asyncio.Event) -> Iterator[None]:
    """Set ``stopping`` when SIGTERM or SIGINT arrives, then run the handler already installed.

    Does nothing where no Python handler is installed (nobody to stop gracefully) or off the
    main thread (where handlers cannot be set); the end of the lifespan drains there.
    """
    chained: dict[signal.Signals, Handler] = {}
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in EXIT_SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                chained[sig] = previous
                signal.signal(
                    sig, _chain(previous, lambda: loop.call_soon_threadsafe(stopping.set))
                )
    try:
        yield
    finally:
        for sig, previous in chained.items():
            signal.signal(sig, previous)


def _chain(previous: Handler, hook: Callable[[], object]) -> Handler:
    def handler(signum: int, frame: FrameType | None) -> None:
        hook()
        previous(signum, frame)

    return handler
