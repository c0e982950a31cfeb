"""The HTTP API, one module per resource; each module's ``router`` holds its routes."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.leanroute import LeanRoute


def _endpoint_name(route: APIRoute) -> str:
    return route.name


def lean_router() -> APIRouter:
    """A router of ``LeanRoute``s, whose operationIds are the endpoints' names (``get_task``,
    ``cancel_task``...), for OpenAPI links and client generators."""
    return APIRouter(route_class=LeanRoute, generate_unique_id_function=_endpoint_name)
