"""Routes every dialect shares: Prometheus ``/metrics`` (behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from runnel.api.common.auth import require_api_key
from runnel.api.common.metrics import CONTENT_TYPE_LATEST
from runnel.api.common.state import get_state
from runnel.model.execution import ExecutionStatus

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    dependencies=[Depends(require_api_key)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    """Executions started and finished by status, node durations by type, queue depth,
    open sockets and HTTP latency, in the Prometheus text format."""
    state = get_state(request)
    _, queued = await state.ready_platform.executions.list(status=ExecutionStatus.QUEUED, limit=1)
    state.metrics.queue_depth.set(queued)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
