"""``/stats``: counts by status, and the last 15 minutes interval by interval, for charts."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from api import schemas
from api.dependencies import BackendDep, ClientDep
from api.openapi import RETRY_AFTER
from api.routes import lean_router
from service.model import TaskStatus
from service.stats import stats_json

router = lean_router()


@router.get(
    "/stats",
    response_model=schemas.Stats,
    responses={503: {"description": "The backend (Redis) is unreachable", "headers": RETRY_AFTER}},
    summary="Counts by status, and the last 15 minutes (service-wide)",
)
async def stats(backend: BackendDep, client: ClientDep) -> Response:
    counts = await backend.counts()
    body = stats_json({s.value: counts[s] for s in TaskStatus}, await backend.stats())
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")
