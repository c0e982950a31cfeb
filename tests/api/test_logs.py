"""``api/logs.py``: Taskwire's log lines, one per message, each with its request id."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from api.logs import FORMAT, OneLineFormatter, RequestIdFilter, configure_logging
from middleware.requestid import request_id
from tests.support import FAILSAFE_S, serve


def installed_handlers() -> list[logging.Handler]:
    return [
        handler
        for handler in logging.getLogger("taskwire").handlers
        if type(handler) is logging.StreamHandler
    ]


@contextmanager
def written(name: str = "taskwire.test") -> Iterator[io.StringIO]:
    """What the logger ``name`` writes through the handler ``configure_logging`` installs
    (its formatter and filters), to a string instead of stderr."""
    configure_logging("info")
    [installed] = installed_handlers()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(installed.formatter)
    for each in installed.filters:
        handler.addFilter(each)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def test_configure_logging_installs_the_one_line_formatter_with_the_request_id() -> None:
    configure_logging("info")
    [handler] = installed_handlers()  # (pytest adds capture handlers of its own)
    assert isinstance(handler.formatter, OneLineFormatter)
    assert any(isinstance(each, RequestIdFilter) for each in handler.filters)


def test_a_message_with_control_characters_is_written_on_one_line() -> None:
    token = request_id.set("req-7")
    try:
        with written() as out:
            logging.getLogger("taskwire.test").warning(
                "task %s: %s", "t-1", "bad\n2026-12-01T00:00:00Z INFO taskwire.access FORGED\x1b[2J"
            )
    finally:
        request_id.reset(token)
    text = out.getvalue()
    [line] = text.splitlines()
    assert text == line + "\n"
    assert line.endswith(
        " WARNING taskwire.test [req-7] "
        "task t-1: bad\\x0a2026-12-01T00:00:00Z INFO taskwire.access FORGED\\x1b[2J"
    )
    assert "\x1b" not in text and "\r" not in text


def test_a_traceback_spans_lines_after_the_message_which_stays_on_one() -> None:
    with written() as out:
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("taskwire.test").exception("%s failed", "GET /x\nFORGED")
    first, *traceback = out.getvalue().splitlines()
    assert first.endswith(" ERROR taskwire.test [-] GET /x\\x0aFORGED failed")
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "ValueError: broken"
    assert len(traceback) >= 3


def test_the_formatter_escapes_the_message_only_not_the_fixed_fields() -> None:
    formatter = OneLineFormatter(FORMAT)
    record = logging.LogRecord("taskwire.x", logging.INFO, __file__, 1, "a\tb", None, None)
    record.request_id = "r-1"
    assert formatter.format(record).endswith(" INFO taskwire.x [r-1] a\\x09b")


# The access log of the whole app, as Taskwire writes it: a raw request line through a real
# server (uvicorn decodes the path's %-escapes; httpx would normalise the path).

FORGED_TARGET = b"/tasks/abc%0A2026-12-01T00:00:00Z%20INFO%20taskwire.access%20FORGED%1b%5b31m"


class Written(logging.StreamHandler):  # type: ignore[type-arg]
    """Formatted records, to a string; ``emitted`` is set at each record."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.emitted = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.emitted.set()


async def access_log_of(make_app: Callable[..., FastAPI], target: bytes) -> str:
    """What Taskwire's log handler writes to the access log for ``GET target``."""
    app = make_app()  # installs the handler
    [installed] = installed_handlers()
    handler = Written()
    handler.setFormatter(installed.formatter)
    for each in installed.filters:
        handler.addFilter(each)
    access = logging.getLogger("taskwire.access")
    access.addHandler(handler)
    try:
        async with serve(app) as url, asyncio.timeout(FAILSAFE_S):
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET %s HTTP/1.1\r\nHost: tw\r\nConnection: close\r\n\r\n" % target)
            answer = await reader.read()  # until the server closes the connection
            writer.close()
            await handler.emitted.wait()
    finally:
        access.removeHandler(handler)
    assert answer.startswith(b"HTTP/1.1 400 ")  # not a task id
    text: str = handler.stream.getvalue()
    return text


async def test_a_request_line_forging_a_log_line_is_written_as_one_line(
    make_app: Callable[..., FastAPI],
) -> None:
    text = await access_log_of(make_app, FORGED_TARGET)
    [line] = text.splitlines()
    assert text == line + "\n"
    assert re.fullmatch(
        r'\S+ INFO taskwire.access \[\w+\] 127\.0\.0\.1 "GET .*FORGED.*" 400 \S+', line
    )
    assert not [char for char in line if unicodedata.category(char) == "Cc"]  # no ESC either


async def test_a_request_line_s_control_characters_are_escaped_once(
    make_app: Callable[..., FastAPI],
) -> None:
    text = await access_log_of(make_app, FORGED_TARGET)
    logged = "/tasks/abc\\x0a2026-12-01T00:00:00Z INFO taskwire.access FORGED\\x1b[31m"
    assert f'"GET {logged}" 400 ' in text
