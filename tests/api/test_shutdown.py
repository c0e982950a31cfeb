from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

import pytest

from api.shutdown import exit_signal


@pytest.fixture
def installed() -> list[int]:
    """A stand-in for the server's SIGTERM handler, recording the signals it gets."""
    calls: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    original = signal.signal(signal.SIGTERM, server_handler)
    yield calls
    signal.signal(signal.SIGTERM, original)


async def test_sigterm_sets_the_event_and_still_reaches_the_server(installed: list[int]) -> None:
    stopping = asyncio.Event()
    server_handler = signal.getsignal(signal.SIGTERM)
    with exit_signal(stopping):
        signal.raise_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            await stopping.wait()
    assert installed == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is server_handler  # put back as it was


async def test_without_a_python_handler_nothing_is_chained() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with exit_signal(asyncio.Event()):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)


def test_off_the_main_thread_nothing_is_chained(installed: list[int]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    async def in_thread() -> None:
        with exit_signal(asyncio.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=asyncio.run, args=(in_thread(),))
    thread.start()
    thread.join()
    assert seen == [before]
