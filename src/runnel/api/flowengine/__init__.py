"""The Flow Engine dialect (seed 004): ``/health``, ``/api/...``, ``/api/events``,
``/webhooks/...``, with ``{"error": "..."}`` errors."""

from __future__ import annotations

from fastapi import FastAPI

from runnel.api.flowengine import executions, socket, system, webhooks, workflows
from runnel.api.flowengine.errors import render_error
from runnel.api.flowengine.schemas import ApprovalRequest, ExecuteRequest, FlowEngineWorkflow

__all__ = ["DOCUMENTED_BODIES", "include_routes", "render_error"]

#: Request bodies the routes read themselves and document by schema.
DOCUMENTED_BODIES = (FlowEngineWorkflow, ExecuteRequest, ApprovalRequest)


def include_routes(app: FastAPI) -> None:
    """Mount every Flow Engine route on ``app``."""
    app.include_router(system.router)
    app.include_router(workflows.router)
    app.include_router(executions.router)
    app.include_router(webhooks.router)
    app.include_router(socket.router)
