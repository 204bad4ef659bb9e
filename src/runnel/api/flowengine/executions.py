"""``/api/executions``: execution history, stored events, cancel, pause, resume, approve."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runnel.api.common.auth import ApiKey, require_api_key
from runnel.api.common.body import read_model
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.api.flowengine.convert import event_page, execution_detail, execution_summary
from runnel.api.flowengine.schemas import (
    ApprovalRequest,
    ErrorBody,
    EventPage,
    ExecutionDetail,
    ExecutionPage,
    ExecutionSummary,
)
from runnel.model.execution import ExecutionStatus
from runnel.services.errors import NotFound

__all__ = ["parse_time", "router"]

router = APIRouter(prefix="/api", tags=["executions"], dependencies=[Depends(require_api_key)])

MAX_PAGE = 1000


def parse_time(value: str | None, name: str) -> float | None:
    """An RFC 3339 time (``2024-01-15T10:30:00Z``) or Unix seconds -> Unix seconds."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ApiProblem(
                400,
                f"Invalid request: query parameter {name!r}: expected an RFC 3339 time"
                f" or Unix seconds, got {text!r}",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds):
        raise ApiProblem(400, f"Invalid request: query parameter {name!r} must be finite")
    return seconds


@router.get(
    "/executions",
    response_model=ExecutionPage,
    responses=error_responses(ErrorBody, 400, 401, 429),
    summary="List executions",
)
async def list_executions(
    request: Request,
    workflow_id: Annotated[str | None, Query(description="Only this workflow's.")] = None,
    status: Annotated[ExecutionStatus | None, Query(description="Only this status.")] = None,
    since: Annotated[
        str | None, Query(description="Created at or after (RFC 3339 or Unix seconds).")
    ] = None,
    until: Annotated[
        str | None, Query(description="Created before (RFC 3339 or Unix seconds).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Executions, newest first, with the total that matches the filters."""
    executions, total = await get_state(request).ready_platform.executions.list(
        workflow_id=workflow_id,
        status=status,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=limit,
        offset=offset,
    )
    return JsonResponse(
        {
            "executions": [execution_summary(execution) for execution in executions],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@router.get(
    "/executions/{execution_id}",
    response_model=ExecutionDetail,
    responses=error_responses(ErrorBody, 401, 404, 429),
    summary="Read an execution",
)
async def get_execution(execution_id: str, request: Request) -> Response:
    """Status, inputs, timings, outputs and every node run with its typed outputs and error."""
    platform = get_state(request).ready_platform
    report = await platform.executions.get(execution_id)
    execution = report.execution
    try:
        workflow = await platform.workflows.get(execution.workflow_id, execution.workflow_version)
        node_types = {node.id: node.type for node in workflow.nodes}
    except NotFound:  # deleted since: the runs stay readable, without their types
        node_types = {}
    return JsonResponse(execution_detail(report, node_types))


@router.get(
    "/executions/{execution_id}/events",
    response_model=EventPage,
    responses=error_responses(ErrorBody, 400, 401, 404, 429),
    summary="Read an execution's stored events",
)
async def get_events(
    execution_id: str,
    request: Request,
    after_seq: Annotated[int, Query(ge=0, description="Only events after this seq.")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    """The execution's events in order, as the events socket sends them."""
    events = await get_state(request).ready_platform.executions.events(
        execution_id, after_seq=after_seq, limit=limit
    )
    return JsonResponse(event_page(execution_id, events, after_seq))


@router.post(
    "/executions/{execution_id}/cancel",
    response_model=ExecutionSummary,
    responses=error_responses(ErrorBody, 401, 404, 409, 429),
    summary="Cancel an execution",
)
async def cancel_execution(execution_id: str, request: Request) -> Response:
    """Cancel a queued, running, paused or waiting execution (409 once it has ended)."""
    execution = await get_state(request).ready_platform.executions.cancel(execution_id)
    return JsonResponse(execution_summary(execution))


@router.post(
    "/executions/{execution_id}/pause",
    response_model=ExecutionSummary,
    responses=error_responses(ErrorBody, 401, 404, 409, 429),
    summary="Pause a running execution",
)
async def pause_execution(execution_id: str, request: Request) -> Response:
    """Running nodes finish; no new node starts until it is resumed."""
    execution = await get_state(request).ready_platform.executions.pause(execution_id)
    return JsonResponse(execution_summary(execution))


@router.post(
    "/executions/{execution_id}/resume",
    response_model=ExecutionSummary,
    responses=error_responses(ErrorBody, 401, 404, 409, 429),
    summary="Resume a paused execution",
)
async def resume_execution(execution_id: str, request: Request) -> Response:
    execution = await get_state(request).ready_platform.executions.resume(execution_id)
    return JsonResponse(execution_summary(execution))


@router.post(
    "/executions/{execution_id}/approve",
    response_model=ExecutionSummary,
    responses=error_responses(ErrorBody, 400, 401, 404, 409, 413, 429),
    openapi_extra=body_schema(ApprovalRequest, "The decision on a node waiting for approval."),
    summary="Approve or reject a waiting node",
)
async def approve_node(execution_id: str, request: Request, principal: ApiKey) -> Response:
    """Decide the approval a node waits for; the execution goes on (or fails there)."""
    decision = await read_model(request, ApprovalRequest)
    execution = await get_state(request).ready_platform.executions.approve(
        execution_id,
        decision.node_id,
        decision.approved,
        by=principal.user_id,
        comment=decision.comment,
    )
    return JsonResponse(execution_summary(execution))
