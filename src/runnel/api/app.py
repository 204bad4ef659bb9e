"""The ASGI app: ``create_app(platform)``, ``create_served_app(settings)`` and, for
``uvicorn runnel.api.app:app``, a module-level ``app`` built lazily from ``Settings()``.

Layout of every app: middlewares (outermost first) the Flowork gateway's Socket.IO
(``/socket.io`` and ``/api/socket.io``, ``runnel.api.flowork.realtime``), HTTP metrics,
request id, CORS (any origin, no credentials), body size limit; one exception handler for
everything, rendering each problem in the format of the dialect that owns the path; the
shared routes (``/metrics``) and each dialect's routes; OpenAPI at ``/openapi.json`` and
``/docs``. ``POST /webhooks/...`` skips the router: the app hands it to its ASGI fast path
(``runnel.api.flowengine.webhook_asgi``: the same HTTP middlewares around the same route).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from runnel.api import flow8, flowengine, flowork
from runnel.api.common import routes as common_routes
from runnel.api.common.bodylimit import BodyLimitMiddleware
from runnel.api.common.metrics import HttpMetricsMiddleware
from runnel.api.common.openapi import install_openapi
from runnel.api.common.problems import ErrorFormats
from runnel.api.common.requestid import RequestIdMiddleware
from runnel.api.common.state import ApiState, get_state
from runnel.api.common.version import runnel_version
from runnel.api.flowengine.webhook_asgi import WebhookFastPath
from runnel.api.flowengine.webhook_asgi import takes as takes_webhook
from runnel.api.flowork.realtime import RealtimeGateway, socketio_layer
from runnel.auth.ratelimit import RateLimiter
from runnel.heap import settled_heap
from runnel.platform import Platform
from runnel.services.accounts import OwnerBootstrap
from runnel.services.errors import ServiceError
from runnel.settings import Settings

__all__ = ["OnReady", "RunnelApp", "create_app", "create_served_app", "drain"]

#: Called once the served app's platform is open and started, before the first request:
#: ``(platform, bootstrap)``, ``bootstrap`` being the owner's first key (first start only).
OnReady = Callable[[Platform, OwnerBootstrap | None], None]

_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

_DESCRIPTION = """\
runnel's Flow Engine API (seed 004) with its roadmap done: execution history, workflow
versions, API keys, rate limits and metrics.

Every `/api/*` route and `/metrics` need `Authorization: Bearer <API key>`; `/health` and
`/webhooks/{path}` are public. Errors are `{"error": "..."}`.

**Events socket** `GET /api/events` (WebSocket; key in the header or `?token=`; filters
`?execution_id=`, `?workflow_id=`, replay `?after_seq=` with an execution id): JSON messages
`WorkflowStarted`, `NodeStarted`, `NodeCompleted`, `NodeFailed`, `NodeEvent`,
`WorkflowCompleted` (plus runnel's `NodeSkipped`, `ExecutionStatusChanged`,
`ApprovalRequested`, `ApprovalResolved`), each with `execution_id`, `workflow_id`, `seq` and
`timestamp`; a client that reads too slowly receives `{"type": "Lagged", "missed": n}`.
"""


def create_app(platform: Platform, settings: Settings | None = None) -> FastAPI:
    """The app over an open platform. The caller starts and stops the platform; the app's
    lifespan only runs its own helpers (the metrics observer)."""
    state = _new_state(settings if settings is not None else Settings())
    state.platform = platform

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _serving(state, app.state.realtime):
            yield

    return _build(state, lifespan)


def create_served_app(settings: Settings, on_ready: OnReady | None = None) -> FastAPI:
    """The app ``runnel serve`` runs: its lifespan opens the platform from ``settings``,
    creates the owner on first start, starts the embedded worker, keeps the startup heap out
    of the garbage collector's way while serving (``runnel.heap.settled_heap``), and at shutdown
    finishes or checkpoints running executions and closes the store."""
    state = _new_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await Platform.open(settings.platform_config())
        try:
            bootstrap = await platform.accounts.ensure_owner(settings.data_dir)
            await platform.start()
            state.platform = platform
            if on_ready is not None:
                on_ready(platform, bootstrap)
            async with _serving(state, app.state.realtime):
                with settled_heap():
                    yield
        finally:
            state.platform = None
            await platform.stop()

    return _build(state, lifespan)


async def drain(platform: Platform) -> None:
    """The first step of a shutdown, before the server waits for its open connections:
    finish or checkpoint the running executions, then end every live subscription, so that
    requests waiting for a run answer at once (with the status it has) and event sockets
    close, instead of holding the shutdown up."""
    await platform.worker.stop(platform.config.shutdown_grace_seconds)
    await platform.bus.close()


def _new_state(settings: Settings) -> ApiState:
    limiter = (
        RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    formats = ErrorFormats(flowengine.render_error)
    formats.register(flowork.PREFIX, flowork.render_error)
    flow8.register_errors(formats)
    return ApiState(settings=settings, formats=formats, limiter=limiter)


@contextlib.asynccontextmanager
async def _serving(state: ApiState, realtime: RealtimeGateway) -> AsyncIterator[None]:
    platform = state.ready_platform
    if state.settings.no_auth:
        state.anonymous = await platform.accounts.owner_principal()
    await flowork.start(state)
    observer = state.metrics.start_observer(platform.bus)
    await realtime.start()
    try:
        yield
    finally:
        await realtime.stop()
        await state.metrics.stop_observer(observer)


class RunnelApp(FastAPI):
    """FastAPI, with ``POST /webhooks/...`` answered by its ASGI fast path
    (``runnel.api.flowengine.webhook_asgi``) before anything else sees it."""

    webhook_fast_path: WebhookFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast_path = self.webhook_fast_path
        if fast_path is not None and takes_webhook(scope):
            scope["app"] = self
            await fast_path(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _build(state: ApiState, lifespan: Any) -> FastAPI:
    settings = state.settings
    realtime = RealtimeGateway(state)
    # The HTTP middlewares (outermost first), also around the webhook fast path.
    http_layers = [
        Middleware(HttpMetricsMiddleware, metrics=state.metrics),
        Middleware(RequestIdMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=False,
            expose_headers=["Retry-After", "X-Request-ID", "X-Workflow-Version"],
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, formats=state.formats),
    ]
    app = RunnelApp(
        title="runnel",
        version=runnel_version(),
        description=_DESCRIPTION,
        lifespan=lifespan,
        # No OpenTelemetry here: FastAPI would otherwise look for a provider (reading
        # os.environ) on every request, about a tenth of a webhook's CPU.
        telemetry=_NO_TELEMETRY,
        middleware=[
            # Outermost: the gateway's Socket.IO (/socket.io, /api/socket.io) answers
            # before anything HTTP-specific (metrics, CORS, body limits) sees the request.
            Middleware(socketio_layer, gateway=realtime),
            *http_layers,
        ],
    )
    app.state.runnel = state
    app.state.realtime = realtime
    for exception_type in (Exception, HTTPException, RequestValidationError, ServiceError):
        app.add_exception_handler(exception_type, _handle)
    app.include_router(common_routes.router)
    flowengine.include_routes(app)
    flowork.include_routes(app)
    flow8.include_routes(app)
    # Last: it forwards every other /api/v1 path to the caller's engine.
    flowork.include_catch_all(app)
    app.webhook_fast_path = WebhookFastPath(state, _webhook_route(), http_layers)
    install_openapi(
        app,
        (
            *flowengine.DOCUMENTED_BODIES,
            *flowork.DOCUMENTED_BODIES,
            *flow8.DOCUMENTED_BODIES,
        ),
    )
    return app


def _webhook_route() -> BaseRoute:
    for route in flowengine.webhooks.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is flowengine.webhooks.webhook:
            return route
    raise LookupError("the app has no webhook route")


async def _handle(request: Request, exc: Exception) -> Response:
    """The app's one exception handler: any exception -> the owning dialect's error."""
    return get_state(request).formats.render_exception(exc, request.method, request.url.path)


_lazy_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``app``: built from ``Settings()`` on first use (``uvicorn runnel.api.app:app``)."""
    global _lazy_app
    if name == "app":
        if _lazy_app is None:
            _lazy_app = create_served_app(Settings())
        return _lazy_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
