"""``/metrics``: Prometheus text format (see ``api/prometheus.py``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.dependencies import get_client
from api.openapi import RETRY_AFTER
from api.prometheus import Metrics
from api.routes import lean_router

router = lean_router()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        503: {"description": "The backend (Redis) is unreachable", "headers": RETRY_AFTER},
    },
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    if request.app.state.settings.metrics_key_required:
        await get_client(request)  # a 401 without a valid key
    registry: Metrics = request.app.state.metrics
    return Response(await registry.render(), media_type=CONTENT_TYPE_LATEST)
