"""``/healthz``: is the service up, and how many tasks it holds in each status."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from api import schemas
from api.dependencies import BackendDep, BusDep
from api.openapi import RETRY_AFTER
from api.routes import lean_router
from service.model import TaskStatus

router = lean_router()


@router.get(
    "/healthz",
    response_model=schemas.Health,
    responses={503: {"description": "The backend (Redis) is unreachable", "headers": RETRY_AFTER}},
    summary="Liveness and counts",
)
async def health(backend: BackendDep, bus: BusDep) -> Response:
    counts = await backend.counts()
    body = {
        "status": "ok",
        "backend": backend.name,
        "tasks": sum(counts.values()),
        **{status.value: counts[status] for status in TaskStatus},
        "subscribers": bus.subscriber_count,
    }
    return Response(orjson.dumps(body), media_type="application/json")
