"""``/task-types``: what can be submitted, with each type's JSON Schema."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from api import schemas
from api.dependencies import ClientDep
from api.routes import lean_router
from service.tasktypes import TASK_TYPES

router = lean_router()

TASK_TYPE_LIST = orjson.dumps(
    [
        {
            "task_type": name,
            "description": (params.__doc__ or "").strip(),
            "parameters_schema": params.model_json_schema(),
            "duration_s": {"min": params.duration_s[0], "max": params.duration_s[1]},
        }
        for name, params in TASK_TYPES.items()
    ]
)


@router.get("/task-types", response_model=list[schemas.TaskType], summary="The task types")
async def list_task_types(client: ClientDep) -> Response:
    return Response(TASK_TYPE_LIST, media_type="application/json")
