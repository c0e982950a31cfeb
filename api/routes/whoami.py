"""``/whoami``: which key a request carries, so a UI or a script can say whose tasks it shows."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from api import schemas
from api.dependencies import ClientDep
from api.routes import lean_router

router = lean_router()


@router.get(
    "/whoami",
    response_model=schemas.Identity,
    summary="The API key a request carries: its name, and whether it reaches every task",
)
async def whoami(client: ClientDep) -> Response:
    if client is None:  # keys are off: anyone reaches every task
        identity = schemas.Identity(keys=False, name=None, admin=True)
    else:
        identity = schemas.Identity(keys=True, name=client.name, admin=client.admin)
    return Response(orjson.dumps(identity.model_dump()), media_type="application/json")
