"""Lean routes: FastAPI's declarations, a shorter request path.

FastAPI derives everything about a route from its endpoint's signature: the OpenAPI document,
the constraints on each parameter, the body's schema. ``LeanRoute`` keeps all of that and
replaces only the per-request handler. FastAPI's handler validates parameter by parameter and
solves dependencies in general form (cookies parsed, exit stacks, telemetry spans) whether a
route needs it or not; measured, it cost more than everything else Taskwire does per request.

Here each route gets, once, a TypedDict of its path, query and header parameters, which
validates them in one call, and a ``TypeAdapter`` of its body, which parses and validates the
JSON bytes in one pass. Errors are FastAPI's ``RequestValidationError`` with FastAPI's error
locations, so they are answered exactly as before. Supported: ``Request`` parameters, async
dependencies that take only the request, path/query/header parameters, one JSON body, and
async endpoints annotated to return a ``Response``. Anything else (``BackgroundTasks``, a
``response: Response`` parameter, cookies, dependencies with parameters or ``yield``) is
refused with a ``TypeError`` when the route is declared, not with a 500 on every request;
such a route belongs on the app as a plain FastAPI route, which works as FastAPI documents.

A GET route also answers HEAD, as HTTP requires and as Starlette's own routes do: the same
status and headers, no body. A streaming body is never started, so a HEAD of ``/events``
answers at once instead of holding a subscription open.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Annotated, Any, NotRequired

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
JSON_TYPES = ("application/json",)


class LeanRoute(APIRoute):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler = self.get_route_handler()

        # Not FastAPI's request_response: its exit stacks serve dependencies with yield.
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handler(Request(scope, receive, send))
            if scope["method"] == "HEAD":
                await _head(response, send)
            else:
                await response(scope, receive, send)

        self.app = app
        self._answers = frozenset(self.methods or ())

    # HEAD is answered wherever GET is, but kept out of ``methods``: the OpenAPI document
    # lists operations, and HEAD is implied by GET.
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._is_head(scope):
            return super().matches({**scope, "method": "GET"})
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Straight to the app for a method it answers: FastAPI's and Starlette's handle would
        # look up a route context (one exists only for routes of an included router, which
        # a LeanRoute never is) and check the method again. Any other method, theirs: a 405.
        if scope["method"] in self._answers or self._is_head(scope):
            await self.app(scope, receive, send)
        else:
            await super().handle(scope, receive, send)

    def _is_head(self, scope: Scope) -> bool:
        is_head = scope["type"] == "http" and scope["method"] == "HEAD"
        return is_head and "GET" in (self.methods or ())

    def get_route_handler(self) -> Handler:
        return _lean_handler(
            self.dependant, self.body_field.field_info if self.body_field else None
        )


async def _head(response: Response, send: Send) -> None:
    start = {"type": "http.response.start", "status": response.status_code}
    await send({**start, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": b""})


def _lean_handler(dependant: Dependant, body_info: Any) -> Handler:
    endpoint = dependant.call
    assert endpoint is not None
    _refuse_unsupported(dependant, endpoint)
    where = {
        field.alias: location
        for location, fields in (
            ("path", dependant.path_params),
            ("query", dependant.query_params),
            ("header", dependant.header_params),
        )
        for field in fields
    }
    fields = [*dependant.path_params, *dependant.query_params, *dependant.header_params]
    params = _params_adapter(fields) if fields else None
    body: TypeAdapter[Any] | None = None
    body_name = dependant.body_params[0].name if dependant.body_params else None
    if body_info is not None:
        body = TypeAdapter(Annotated[body_info.annotation, body_info])
    dependencies = [_request_only(sub) for sub in dependant.dependencies]

    async def handle(request: Request) -> Response:
        values: dict[str, Any] = {}
        if params is not None:
            values.update(_validate(params, _raw(request, where), where))
        if body is not None and body_name is not None:
            values[body_name] = await _parse_body(request, body)
        if dependant.request_param_name:
            values[dependant.request_param_name] = request
        for name, call in dependencies:
            values[name] = await call(request)
        response = await endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{endpoint.__name__} must return a Response")
        return response

    return handle


def _raw(request: Request, where: Mapping[str, str]) -> dict[str, Any]:
    raw = {}
    for alias, location in where.items():
        # Each source read only if a parameter is there: parsing the query costs as much as
        # a quarter of a small request.
        if location == "path":
            value = request.path_params.get(alias)
        elif location == "query":
            value = request.query_params.get(alias)
        else:
            value = request.headers.get(alias)
        if value is not None:
            raw[alias] = value
    return raw


def _params_adapter(fields: list[Any]) -> TypeAdapter[Any]:
    # A TypedDict, not a model: it validates straight into the dict of keyword arguments,
    # several times faster than building a model instance and reading it back.
    def typed(field: Any) -> Any:
        annotation: Any = field.field_info.annotation
        annotated: Any = Annotated[annotation, field.field_info]
        return annotated if field.field_info.is_required() else NotRequired[annotated]

    params: Any = TypedDict("Params", {field.name: typed(field) for field in fields})  # type: ignore[misc]
    return TypeAdapter(params)


def _validate(
    params: TypeAdapter[Any], raw: dict[str, Any], where: Mapping[str, str]
) -> dict[str, Any]:
    try:
        values: dict[str, Any] = params.validate_python(raw)
        return values
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**error, "loc": (where.get(str(error["loc"][0]), "query"), *error["loc"])}
                for error in exc.errors()
            ]
        ) from None


async def _parse_body(request: Request, body: TypeAdapter[Any]) -> Any:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if not (media_type in JSON_TYPES or media_type.endswith("+json")):
        raise RequestValidationError(
            [
                {
                    "type": "content_type",
                    "loc": ("header", "content-type"),
                    "msg": "the body must be JSON, sent with Content-Type: application/json",
                    "input": content_type,
                }
            ]
        )
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return body.validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


_UNSUPPORTED = {
    "background_tasks_param_name": "BackgroundTasks",
    "response_param_name": "a Response parameter",
    "websocket_param_name": "a WebSocket",
    "http_connection_param_name": "an HTTPConnection",
    "security_scopes_param_name": "SecurityScopes",
}


def _refuse_unsupported(dependant: Dependant, endpoint: Callable[..., Any]) -> None:
    name = getattr(endpoint, "__name__", repr(endpoint))
    unsupported = [what for attr, what in _UNSUPPORTED.items() if getattr(dependant, attr)]
    if dependant.cookie_params:
        unsupported.append("cookies")
    if len(dependant.body_params) > 1:
        unsupported.append("several body parameters")
    if unsupported:
        raise TypeError(
            f"{name}: a LeanRoute does not support {', '.join(unsupported)}; "
            "declare it as a plain FastAPI route instead"
        )
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{name}: a LeanRoute's endpoint must be an async function")
    returns = inspect.signature(endpoint, eval_str=True).return_annotation
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        raise TypeError(f"{name}: a LeanRoute's endpoint must be annotated to return a Response")


def _request_only(sub: Dependant) -> tuple[str, Callable[[Request], Awaitable[Any]]]:
    call = sub.call
    if sub.name is None or call is None or not inspect.iscoroutinefunction(call):
        raise TypeError("a lean route's dependencies must be async functions")
    takes_only_request = not (
        sub.path_params
        or sub.query_params
        or sub.header_params
        or sub.cookie_params
        or sub.body_params
        or sub.dependencies
    )
    if not takes_only_request or sub.request_param_name is None:
        raise TypeError(f"{call.__name__}: a lean route's dependencies take only the request")
    return sub.name, call
