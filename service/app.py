"""The app factory: builds every long-lived object from settings and wires the ASGI stack.

Request path, outermost first: request id, access log, CORS, error classification, rate
limiting, body limit, then FastAPI's router. So every answer, a CORS preflight's too, carries
a request id and is logged, and a 429 or a 500 still carries CORS headers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sse_starlette.sse import AppStatus
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from middleware.accesslog import AccessLogMiddleware
from middleware.bodylimit import BodyLimitMiddleware
from middleware.cors import CORSMiddleware
from middleware.errors import ErrorMiddleware
from middleware.ratelimit import RateLimitMiddleware, SlidingWindowLimiter
from middleware.requestid import RequestIdMiddleware
from service.cleanup import Cleanup
from service.clock import Clock
from service.engine import Engine
from service.logs import configure_logging
from service.metrics import build_registry
from service.openapi import problem_openapi
from service.queue import TaskQueue
from service.routes import build_router
from service.settings import Settings, load_settings
from service.shutdown import exit_signal
from service.store import TaskStore
from service.ui import DEFAULT_DIST, ui_routes
from streams.bus import EventBus

UNCOUNTED_PATHS = ("/healthz", "/metrics", "/task-types", "/docs", "/openapi.json", "/")
UNCOUNTED_PREFIXES = ("/assets/", "/docs/")
EXPOSED_HEADERS = ("Location", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID")


class TaskwireAPI(FastAPI):
    """FastAPI with nothing but Taskwire's own middleware around its router.

    FastAPI wraps its router in five layers of its own: server errors, telemetry, a body limit,
    exception handlers and exit stacks for its dependency system. Taskwire's middleware already
    classifies every error and limits bodies, and its lean routes use no exit stacks, so those
    layers did nothing here but cost a fifth of a request's time.
    """

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> FastAPI:
    """Build Taskwire. Without ``settings`` they are read from the environment."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    bus = EventBus(buffer_size=settings.event_buffer, subscriber_queue=settings.subscriber_queue)
    store = TaskStore(settings.max_tasks)
    engine = Engine(
        store=store,
        queue=TaskQueue(settings.max_queue),
        bus=bus,
        concurrency=settings.concurrency,
        work_scale=settings.work_scale,
        task_timeout_s=settings.task_timeout_s,
        clock=clock,
        monotonic=monotonic,
        rng=rng,
    )
    cleanup = Cleanup(
        store,
        bus,
        ttl_s=settings.result_ttl_s,
        clock=clock,
        interval_s=min(1.0, settings.result_ttl_s),
    )
    limiter = (
        SlidingWindowLimiter(
            limit=settings.rate_limit, window_s=settings.rate_window_s, clock=monotonic
        )
        if settings.rate_limit
        else None
    )

    async def drain(stopping: asyncio.Event) -> None:
        await stopping.wait()
        await engine.close()  # running tasks end cancelled, each with its event
        bus.close()  # then every stream ends and every long-poll answers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sse-starlette would end streams on SIGTERM too, through its patch of uvicorn and a
        # 0.5 s poll; Taskwire drains them itself (service/shutdown.py): one, tested, path.
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
        stopping = asyncio.Event()
        engine.start()
        draining = asyncio.create_task(drain(stopping))
        try:
            async with AsyncExitStack() as stack:
                stack.enter_context(exit_signal(stopping))
                await stack.enter_async_context(background(cleanup.run()))
                if limiter is not None:
                    await stack.enter_async_context(background(limiter.run_sweeps()))
                yield
        finally:
            stopping.set()
            await draining

    app = TaskwireAPI(
        title="Taskwire",
        version="0.1.0",
        summary="A rate-limited asynchronous task manager.",
        lifespan=lifespan,
        middleware=_middleware(settings, limiter),
        redoc_url=None,
        # /tasks/ is not /tasks: a redirect would take its Location from the Host header.
        redirect_slashes=False,
        # Taskwire's metrics are Prometheus (/metrics) and its access log its own; FastAPI's
        # OpenTelemetry hooks would look for a provider on every request that nobody set up.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.engine = engine
    app.state.cleanup = cleanup
    app.state.limiter = limiter
    app.state.registry = build_registry(engine, limiter)
    # Added as they are, not by include_router: FastAPI rebuilds included routes into
    # contexts with handlers of its own, which would bypass LeanRoute's. And first: the
    # router tries routes in order, and the API is hotter than /docs and /openapi.json.
    app.router.routes[:0] = build_router(settings).routes
    app.router.routes.extend(ui_routes(settings.ui_dir or DEFAULT_DIST))
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
    return app


def _middleware(settings: Settings, limiter: SlidingWindowLimiter | None) -> list[Middleware]:
    stack = [Middleware(RequestIdMiddleware), Middleware(AccessLogMiddleware)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Content-Type", "Last-Event-ID", "X-Request-ID"],
                expose_headers=EXPOSED_HEADERS,
            )
        )
    stack.append(Middleware(ErrorMiddleware))
    if limiter is not None:
        stack.append(
            Middleware(
                RateLimitMiddleware,
                limiter=limiter,
                exempt_paths=UNCOUNTED_PATHS,
                exempt_prefixes=UNCOUNTED_PREFIXES,
            )
        )
    stack.append(Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes))
    return stack


@asynccontextmanager
async def background(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coroutine`` as a task for the duration of the block, then cancel and await it."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
