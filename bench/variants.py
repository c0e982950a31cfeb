"""Taskwire as it runs, with one part taken out: what that part costs is the difference.

``bench.variants:no_request_metrics`` is ``asgi:app`` without the middleware that records
every request's duration for Prometheus (``taskwire_http_request_duration_seconds``).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.server import tune_gc
from middleware.metrics import RequestMetricsMiddleware


def without(app: FastAPI, middleware: object) -> FastAPI:
    """``app`` without one of its middleware (the stack is built at the first request)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not middleware]
    return app


no_request_metrics = without(create_app(), RequestMetricsMiddleware)
tune_gc()
