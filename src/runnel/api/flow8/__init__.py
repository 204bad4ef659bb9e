"""The flow8 dialect (seed 003): ``/api/auth``, ``/api/flows``, ``/api/plays``,
``/api/groups``, ``/api/kv``, ``/api/channels``, ``/api/schedules`` and ``/api/ws``, with
``{"error": CODE, "message", "statusCode"}`` errors and ``{data, total, page, size,
pages}`` pages."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI

from runnel.api.common.problems import ErrorFormats
from runnel.api.flow8 import auth, channels, flows, groups, kv, plays, schedules, ws
from runnel.api.flow8.errors import render_error
from runnel.api.flow8.schemas import (
    ApiKeyBody,
    ApproveBody,
    ChannelBody,
    FlowBody,
    FlowletBody,
    GroupBody,
    KvBody,
    LoginBody,
    RunBody,
    ScheduleBody,
)

__all__ = ["DOCUMENTED_BODIES", "PREFIXES", "include_routes", "register_errors", "render_error"]

#: The paths flow8 owns (its error format applies under each).
PREFIXES: Final = (
    "/api/auth",
    "/api/flows",
    "/api/plays",
    "/api/groups",
    "/api/kv",
    "/api/channels",
    "/api/schedules",
    "/api/ws",
)

#: Request bodies, for the OpenAPI document.
DOCUMENTED_BODIES = (
    LoginBody,
    ApiKeyBody,
    FlowBody,
    FlowletBody,
    RunBody,
    ApproveBody,
    GroupBody,
    KvBody,
    ChannelBody,
    ScheduleBody,
)


def register_errors(formats: ErrorFormats) -> None:
    """flow8's error format for every path it owns."""
    for prefix in PREFIXES:
        formats.register(prefix, render_error)


def include_routes(app: FastAPI) -> None:
    """Mount every flow8 route on ``app``."""
    for module in (auth, flows, plays, groups, kv, channels, schedules):
        app.include_router(module.router)
    app.include_router(ws.router)
