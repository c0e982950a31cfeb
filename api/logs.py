"""Logging: one line per event, each with the id of the request it belongs to."""

from __future__ import annotations

import logging
import sys
import time

from middleware.logsafe import one_line
from middleware.requestid import request_id

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class OneLineFormatter(logging.Formatter):
    """Every message on one line, whatever values it was given: control characters are
    escaped (``middleware/logsafe.py``); only a traceback, appended after, spans lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(level: str) -> None:
    """Send the ``taskwire.*`` loggers to stderr; the server's own loggers are left alone."""
    logger = logging.getLogger("taskwire")
    logger.setLevel(level.upper())
    logger.propagate = False
    if not logger.handlers:
        formatter = OneLineFormatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
