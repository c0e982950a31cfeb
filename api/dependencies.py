"""What routes are given: the long-lived objects ``create_app`` built, as typed dependencies.

    async def get_task(task_id: UUID, backend: BackendDep) -> Response: ...

Each is read from ``app.state``, where the app factory put it; the functions are async so
FastAPI calls them inline instead of in a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.access import Unauthorized, client_of
from service.access import Client
from service.backend import Backend
from service.engine import Engine
from service.events import EventBus
from service.settings import Settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def get_bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.backend.bus
    return bus


async def get_client(request: Request) -> Client | None:
    """Who the request is from: None where API keys are off; with them on, a 401 for a
    request without a valid key."""
    if request.app.state.keys is None:
        return None
    client = client_of(request.scope)
    if client is None:
        raise Unauthorized()
    return client


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
"""Commands: submit, cancel, retry."""
BackendDep = Annotated[Backend, Depends(get_backend)]
"""Reads: a task, a list, the counts."""
BusDep = Annotated[EventBus, Depends(get_bus)]
"""Events: long-polls, streams, watches."""
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client | None, Depends(get_client)]
"""Who asks: with API keys on, a non-admin client reaches its own tasks only."""
