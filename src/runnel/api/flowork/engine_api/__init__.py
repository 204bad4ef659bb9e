"""An engine's own REST API: what the gateway forwards a user's ``/api/v1/...`` request to.

The embedded engine serves it in-process (the gateway calls it through an in-memory
transport); a separate engine process (``runnel engine``) serves the same app on its
``internal_api_url``. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from runnel.api.common.problems import problem_from_exception
from runnel.api.common.version import runnel_version
from runnel.api.flowork.engine_api import content, presets, summary, variables
from runnel.api.flowork.engine_api.context import (
    ENGINE_ID_HEADER,
    SHARE_TOKEN_HEADER,
    USER_ADDRESS_HEADER,
    USER_ID_HEADER,
    EngineApiContext,
    ShareGrants,
)
from runnel.api.flowork.errors import render_error
from runnel.services.errors import ServiceError

__all__ = [
    "ENGINE_ID_HEADER",
    "SHARE_TOKEN_HEADER",
    "USER_ADDRESS_HEADER",
    "USER_ID_HEADER",
    "EngineApiContext",
    "ShareGrants",
    "create_engine_api",
]


def create_engine_api(context: EngineApiContext) -> FastAPI:
    """The engine's API over ``context``."""
    app = FastAPI(title="runnel engine", version=runnel_version(), docs_url=None, redoc_url=None)
    app.state.engine_api = context
    for exception_type in (Exception, HTTPException, RequestValidationError, ServiceError):
        app.add_exception_handler(exception_type, _handle)
    app.include_router(content.router)
    app.include_router(presets.router)
    app.include_router(variables.router)
    app.include_router(summary.router)

    @app.get("/api/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "engine", "version": runnel_version()}

    return app


async def _handle(request: Request, exc: Exception) -> Response:
    return render_error(problem_from_exception(exc, request.method, request.url.path))
