"""``POST /webhooks/{path}``: run the workflow whose Webhook trigger listens on ``path``.

Public (the caller is another system); rate-limited by client address. The JSON body is the
inputs (typed values or plain JSON; an empty body is no inputs). The answer is the run's
result: with exactly one end node that fired its default port (``value``), that value as
plain JSON; otherwise ``{node_id: {port: value}}``. A trigger with ``"respond":
"immediately"`` answers 202 ``{"execution_id"}`` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.auth import enforce_rate_limit, rate_key
from runnel.api.common.body import decode_inputs, read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import error_responses
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import ApiState, get_state
from runnel.api.flowengine.schemas import ErrorBody, ExecutionAccepted
from runnel.api.flowengine.workflows import outcome_response
from runnel.model.execution import ExecutionStatus
from runnel.model.values import to_json
from runnel.model.workflow import DEFAULT_PORT, TriggerKind, Workflow
from runnel.services.executions import ExecutionReport
from runnel.services.workflows import webhook_path

__all__ = ["router", "run_webhook", "webhook_answer"]

router = APIRouter(tags=["webhooks"])

RESPOND_IMMEDIATELY = "immediately"


def webhook_answer(outputs: Mapping[str, Mapping[str, Any]] | None) -> Any:
    """What a finished webhook run answers (plain JSON)."""
    ends = outputs or {}
    if len(ends) == 1:
        (ports,) = ends.values()
        if DEFAULT_PORT in ports:
            return to_json(ports[DEFAULT_PORT])
    return to_json(ends)


def _responds_immediately(workflow: Workflow, path: str) -> bool:
    wanted = webhook_path(path)
    for trigger in workflow.triggers:
        if trigger.kind is TriggerKind.WEBHOOK and webhook_path(trigger.config.get("path")) == (
            wanted
        ):
            return str(trigger.config.get("respond", "")).lower() == RESPOND_IMMEDIATELY
    return False


def _render(report: ExecutionReport) -> Any:
    return webhook_answer(report.execution.outputs)


@router.post(
    "/webhooks/{path:path}",
    responses={
        200: {"description": "The end node's value, or {node_id: {port: value}}"},
        202: {"model": ExecutionAccepted, "description": 'With "respond": "immediately"'},
        **error_responses(ErrorBody, 400, 404, 409, 413, 429, 500),
    },
    summary="Trigger a workflow by webhook",
)
async def webhook(path: str, request: Request) -> Response:
    """Run the workflow listening on ``path`` with the JSON body as its inputs."""
    return await run_webhook(get_state(request), path, request)


async def run_webhook(state: ApiState, path: str, request: Request) -> Response:
    """The webhook route's whole behaviour, shared by the FastAPI route above and the ASGI
    fast path (``webhook_asgi``) that answers ``POST /webhooks/...`` without the router."""
    enforce_rate_limit(state, "webhook:" + rate_key(None, request))
    platform = state.ready_platform
    workflow = await platform.workflows.find_by_webhook(path)
    if workflow is None:
        raise ApiProblem(404, f"No workflow listens on /webhooks/{webhook_path(path)}")
    inputs = decode_inputs(await read_object(request, default={}), where="body")
    executions = platform.executions
    if _responds_immediately(workflow, path):
        execution = await executions.start(
            workflow.id, inputs, version=workflow.version, trigger="webhook"
        )
        return JsonResponse({"execution_id": execution.id, "status": execution.status.value}, 202)
    report = await executions.run(
        workflow.id, inputs, version=workflow.version, trigger="webhook", workflow=workflow
    )
    if report.execution.status is ExecutionStatus.WAITING:
        return JsonResponse({"execution_id": report.execution.id, "status": "waiting"}, 202)
    return outcome_response(report, _render)
