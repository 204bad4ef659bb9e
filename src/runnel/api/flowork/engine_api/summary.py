"""``/api/v1/dashboard/summary``: the engine's executions today and this week."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from runnel.api.common.jsonbody import JsonResponse
from runnel.api.flowork.engine_api.context import EngineCaller, caller_of, context_of
from runnel.api.flowork.wire import dashboard_json

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/dashboard")


@router.get("/summary")
async def summary(
    request: Request, caller: Annotated[EngineCaller, Depends(caller_of)]
) -> Response:
    """Counts by status today and this week, running now, success rate, average duration."""
    return JsonResponse(dashboard_json(await context_of(request).dashboard.summary()))
