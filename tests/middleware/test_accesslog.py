from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.support import client_for


async def test_one_line_per_request_with_status_duration_and_request_id(
    make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    from service.logs import RequestIdFilter

    logger = logging.getLogger("taskwire")
    caplog.handler.addFilter(RequestIdFilter())
    logger.addHandler(caplog.handler)
    try:
        async with client_for(make_app(), address="192.0.2.9") as client:
            await client.get("/nope", headers={"x-request-id": "req-1"})
    finally:
        logger.removeHandler(caplog.handler)
    [line] = [r for r in caplog.records if r.name == "taskwire.access"]
    assert re.fullmatch(r'192\.0\.2\.9 "GET /nope" 404 \d+\.\dms', line.getMessage())
    assert line.request_id == "req-1"  # type: ignore[attr-defined]
