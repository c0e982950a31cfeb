"""Logging: one line per event, each with the id of the request it belongs to."""

from __future__ import annotations

import logging
import sys
import time

from middleware.requestid import request_id

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


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
        formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
