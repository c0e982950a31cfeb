"""The app factory: builds every long-lived object from settings and wires the ASGI stack.

Request path, outermost first: slow clients (a client that stops reading is cut off), request
id, access log, fixed headers (nosniff), WebSocket refusal, CORS, rate limiting, the per-
address stream cap, error classification, body limit, then FastAPI's router. So every answer, a
CORS preflight's too, carries a request id and is logged; a 429 or a 500 still carries CORS
headers; and every counted answer, an error's included, carries the rate-limit fields.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
    websocket_request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute
from sse_starlette.sse import AppStatus
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from api.access import ACCESS_TOKEN, KeyAuthentication, client_of
from api.docs import docs_routes
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import IdempotencyMiddleware
from api.logs import configure_logging
from api.openapi import problem_openapi
from api.problems import classify
from api.prometheus import Metrics
from api.routes import events, health, metrics, stats, tasks, tasktypes, whoami
from api.shutdown import exit_signal
from api.ui import DEFAULT_DIST, ui_routes
from middleware.accesslog import AccessLogMiddleware
from middleware.bodylimit import BodyLimitMiddleware
from middleware.cors import CORSMiddleware
from middleware.errors import ErrorMiddleware
from middleware.headers import NOSNIFF
from middleware.ratelimit import KeyOf, RateCounter, RateLimitMiddleware, by_address
from middleware.slowclients import OpenResponses, SlowClientMiddleware
from middleware.streamlimit import StreamLimitMiddleware
from middleware.websocket import RefuseWebSocketMiddleware
from service.access import ApiKeys
from service.backend import Backend
from service.backends import open_backend
from service.cleanup import Cleanup
from service.clock import Clock
from service.engine import Engine
from service.settings import Settings, load_settings

UNCOUNTED_PATHS = ("/healthz", "/docs", "/openapi.json", "/")
FREE_PATHS = frozenset({"/metrics", "/stats", "/task-types", "/whoami"})
"""Not counted for whoever may read them. With API keys on, a request without a valid key is
counted on these too (it is a 401), so no route lets guessing keys go faster than the limit."""
UNCOUNTED_PREFIXES = ("/assets/", "/docs/")
EXPOSED_HEADERS = (
    "Idempotent-Replayed",
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "WWW-Authenticate",
    "X-Request-ID",
)
"""Headers on every response: no browser guesses a type other than the one declared."""
TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
"""What a boolean query parameter accepts as true (as pydantic does)."""
SHUTDOWN_GRACE_S = 0.5
"""On shutdown, how long answers still being sent get before their connections are cut."""
ROUTERS = (
    tasks.router,
    events.router,
    tasktypes.router,
    health.router,
    stats.router,
    whoami.router,
    metrics.router,
)

_DEFAULT_HANDLERS: dict[Any, Callable[..., Any]] = {
    HTTPException: http_exception_handler,
    RequestValidationError: request_validation_exception_handler,
    WebSocketRequestValidationError: websocket_request_validation_exception_handler,
}
"""FastAPI's own handlers, which every app starts with; Taskwire's middleware answers these."""


def _refuse_catch_all(key: Any) -> None:
    if key in (500, Exception):
        raise TypeError(
            "Taskwire answers unexpected errors itself (middleware/errors.py); "
            "add a handler for a specific exception class instead"
        )


class PlainRoute(APIRoute):
    """A route added to the app as FastAPI documents (``@app.get``), with the exit stack
    FastAPI's outer layer would give it: per route, so Taskwire's lean routes pay nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = AsyncExitStackMiddleware(self.app)


class TaskwireAPI(FastAPI):
    """FastAPI, with Taskwire's middleware in place of FastAPI's own outer layers.

    FastAPI wraps its router in layers of its own: server errors, telemetry, a body limit,
    exception handlers. Taskwire's middleware already classifies every error as problem
    JSON and limits bodies, so those layers would only cost time (a fifth of a request,
    measured). What stays is what ordinary FastAPI code relies on: plain ``@app.get``
    routes (with ``BackgroundTasks``, ``Response`` parameters, dependencies with
    ``yield``) get their exit stacks, and handlers added with ``@app.exception_handler``
    answer their exceptions. A handler for ``Exception`` or 500 is refused when it is
    added: unexpected errors are answered by ``middleware/errors.py``, logged with the
    request id.
    """

    def add_exception_handler(self, exc_class_or_status_code: Any, handler: Any) -> None:
        _refuse_catch_all(exc_class_or_status_code)
        super().add_exception_handler(exc_class_or_status_code, handler)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.router.route_class = PlainRoute

    def build_middleware_stack(self) -> ASGIApp:
        for key in self.exception_handlers:  # handlers given to the constructor, too
            _refuse_catch_all(key)
        app: ASGIApp = self.router
        added = {
            key: handler
            for key, handler in self.exception_handlers.items()
            if handler is not _DEFAULT_HANDLERS.get(key)
        }
        if added:
            # FastAPI's default answers (422 and plain details) would preempt Taskwire's
            # problem JSON, so what no added handler claims is passed on to it.
            defaults = dict.fromkeys(_DEFAULT_HANDLERS, _pass_on)
            app = ExceptionMiddleware(app, handlers={**defaults, **added}, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(
    settings: Settings | None = None,
    *,
    backend: Backend | None = None,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> FastAPI:
    """Build Taskwire. Without ``settings`` they are read from the environment; without
    ``backend`` it is the one ``settings.backend`` names."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    keys = settings.api_keys()
    backend = backend or open_backend(settings, clock=clock, monotonic=monotonic)
    metrics = Metrics(backend)
    engine = Engine(
        backend,
        concurrency=settings.concurrency,
        work_scale=settings.work_scale,
        task_timeout_s=settings.task_timeout_s,
        clock=clock,
        monotonic=monotonic,
        rng=rng,
        on_ended=metrics.observe_task,
    )
    cleanup = Cleanup(
        backend, ttl_s=settings.result_ttl_s, interval_s=min(1.0, settings.result_ttl_s)
    )
    counter = (
        backend.rate_counter(limit=settings.rate_limit, window_s=settings.rate_window_s)
        if settings.rate_limit
        else None
    )

    responses = OpenResponses()

    async def drain(stopping: asyncio.Event) -> None:
        await stopping.wait()
        await engine.close()  # running tasks are released (memory: cancelled), with events
        await backend.close()  # then every stream ends and every long-poll answers
        await responses.close(grace_s=SHUTDOWN_GRACE_S)  # and who does not read is cut off

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sse-starlette would end streams on SIGTERM too, through its patch of uvicorn and a
        # 0.5 s poll; Taskwire drains them itself (api/shutdown.py): one, tested, path.
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
        await backend.start()
        stopping = asyncio.Event()
        if settings.workers:
            engine.start()
        draining = asyncio.create_task(drain(stopping))
        try:
            async with AsyncExitStack() as stack:
                stack.enter_context(exit_signal(stopping))
                await stack.enter_async_context(background(cleanup.run()))
                await stack.enter_async_context(background(metrics.run(backend.bus)))
                yield
        finally:
            stopping.set()
            await draining

    app = TaskwireAPI(
        title="Taskwire",
        version="0.1.0",
        summary="A rate-limited asynchronous task manager.",
        lifespan=lifespan,
        middleware=_middleware(settings, backend, keys, counter, responses, metrics),
        docs_url=None,  # /docs is api/docs.py's: Swagger UI from this service's own files
        redoc_url=None,
        # /tasks/ is not /tasks: a redirect would take its Location from the Host header.
        redirect_slashes=False,
        # Taskwire's metrics are Prometheus (/metrics) and its access log its own; FastAPI's
        # OpenTelemetry hooks would look for a provider on every request that nobody set up.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.backend = backend
    app.state.engine = engine
    app.state.cleanup = cleanup
    app.state.metrics = metrics
    # Added as they are, not by include_router: FastAPI rebuilds included routes into
    # contexts with handlers of its own, which would bypass LeanRoute's. And first: the
    # router tries routes in order, and the API is hotter than /docs and /openapi.json.
    app.router.routes[:0] = [route for router in ROUTERS for route in router.routes]
    app.router.routes.extend(docs_routes(app.openapi_url or "/openapi.json", app.title))
    app.router.routes.extend(ui_routes(settings.ui_dir or DEFAULT_DIST))
    long_poll_max_s = settings.long_poll_max_s
    keys_on = keys is not None
    metrics_open = not settings.metrics_key_required

    def openapi() -> dict[str, Any]:
        return problem_openapi(
            app, long_poll_max_s=long_poll_max_s, keys=keys_on, metrics_open=metrics_open
        )

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _middleware(
    settings: Settings,
    backend: Backend,
    keys: ApiKeys | None,
    counter: RateCounter | None,
    responses: OpenResponses,
    metrics: Metrics,
) -> list[Middleware]:
    stack = [
        Middleware(
            SlowClientMiddleware, send_timeout_s=settings.send_timeout_s, responses=responses
        ),
        Middleware(
            AccessLogMiddleware,
            headers=NOSNIFF,
            secret_params=[ACCESS_TOKEN],
            observe=metrics.observe_request,
        ),
        Middleware(RefuseWebSocketMiddleware),
    ]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "Last-Event-ID",
                    "X-Request-ID",
                ],
                expose_headers=EXPOSED_HEADERS,
            )
        )
    if keys is not None:  # who a request is from, for the limiter and the routes
        authentication = KeyAuthentication(keys, token_in_query=is_event_stream)
        stack.append(Middleware(AuthenticationMiddleware, backend=authentication))
    if counter is not None:
        metrics_open = keys is None or not settings.metrics_key_required
        stack.append(
            Middleware(
                RateLimitMiddleware,
                counter=counter,
                exempt_paths=UNCOUNTED_PATHS + (("/metrics",) if metrics_open else ()),
                exempt_prefixes=UNCOUNTED_PREFIXES,
                key_of=counted_as(keys=keys is not None),
                on_refused=metrics.refused.inc,
                counts_itself=counted_by_its_route,
            )
        )
    stack.append(
        Middleware(
            StreamLimitMiddleware, per_client=settings.max_streams_per_client, is_stream=is_stream
        )
    )
    stack.append(Middleware(ErrorMiddleware, classify=classify))
    # The body limit outside the idempotency layer, which reads the body before it marks
    # its key in flight.
    stack.append(Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes))
    stack.append(Middleware(IdempotencyMiddleware, backend=backend, scope_of=keys_scope))
    return stack


def is_event_stream(path: str) -> bool:
    """Whether a path is an SSE route (which also takes a key as ``?access_token=``)."""
    return path == "/events" or (path.startswith("/tasks/") and path.endswith("/events"))


def counted_as(*, keys: bool) -> KeyOf:
    """A client with a valid API key is counted by its key, wherever it comes from; any other
    request (keys off, or a missing or wrong key) by its address. ``FREE_PATHS`` are not
    counted for a valid key, or for anyone when keys are off."""

    def key_of(scope: Scope) -> tuple[str, str] | None:
        client = client_of(scope)
        if scope["path"] in FREE_PATHS and (client is not None or not keys):
            return None
        return by_address(scope) if client is None else ("per-key", f"key:{client.name}")

    return key_of


def keys_scope(scope: Scope) -> str:
    """Whose Idempotency-Keys a request's are: its API key's, else its address's."""
    client = client_of(scope)
    return f"key:{client.name}" if client is not None else by_address(scope)[1]


IDEMPOTENCY_KEY = IDEMPOTENCY_HEADER.lower().encode()


def counted_by_its_route(scope: Scope) -> bool:
    """Requests whose route counts them against the rate limit in its own call to the backend
    (``middleware.ratelimit.Pending``; on Redis one round trip for both, not two): a submit
    without an ``Idempotency-Key`` (a key is looked up before the route), and a plain read of
    a task (a long-poll, or any query, is counted by the layer first)."""
    path: str = scope["path"]
    match scope["method"]:
        case "POST":
            return path == "/tasks" and all(name != IDEMPOTENCY_KEY for name, _ in scope["headers"])
        case "GET" | "HEAD":
            plain = path.startswith("/tasks/") and path.count("/") == 2
            return plain and not scope["query_string"]
        case _:
            return False


def is_stream(scope: Scope) -> bool:
    """Whether a request opens a stream: ``/events``, a task's events, or a watch."""
    path: str = scope["path"]
    if is_event_stream(path):
        return True
    query: bytes = scope["query_string"]
    # Skipped cheaply only when no spelling of "watch" can be there (%77atch is one).
    if path != "/tasks" or (b"watch" not in query and b"%" not in query):
        return False
    watch = QueryParams(query).get("watch", "")
    return watch.lower() in TRUE_WORDS


@asynccontextmanager
async def background(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coroutine`` as a task for the duration of the block, then cancel and await it."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _pass_on(request: Request, exc: Exception) -> Response:
    raise exc
