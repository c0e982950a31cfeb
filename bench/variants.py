"""Taskwire as it runs, with one part taken out: what that part costs is the difference.

``bench.variants:no_request_metrics`` is ``asgi:app`` whose access-log layer does not record
each request's duration for Prometheus (``taskwire_http_request_duration_seconds``).
"""

from __future__ import annotations

from api.app import create_app
from api.server import tune_gc
from middleware.accesslog import AccessLogMiddleware

no_request_metrics = create_app()
for _layer in no_request_metrics.user_middleware:  # the stack is built at the first request
    _cls: object = _layer.cls
    if _cls is AccessLogMiddleware:
        _layer.kwargs["observe"] = None
tune_gc()
