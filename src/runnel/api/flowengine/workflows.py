"""``/api/workflows``: register, list, read, update (a new version), delete, execute."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from runnel.api.common.auth import ApiKey, require_api_key
from runnel.api.common.body import decode_inputs, read_model, read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.api.flowengine.convert import (
    execute_result,
    failure_message,
    workflow_summary,
    workflow_version,
)
from runnel.api.flowengine.schemas import (
    ErrorBody,
    ExecuteRequest,
    ExecuteResult,
    ExecutionAccepted,
    FlowEngineWorkflow,
    Message,
    WorkflowCreated,
    WorkflowSummary,
    WorkflowVersion,
)
from runnel.model.execution import ExecutionMode, ExecutionStatus
from runnel.model.flowengine import (
    FlowEngineFormatError,
    workflow_from_flowengine,
    workflow_to_flowengine,
)
from runnel.model.workflow import Workflow
from runnel.services.executions import ExecutionReport

__all__ = ["outcome_response", "parse_workflow", "router"]

router = APIRouter(prefix="/api", tags=["workflows"], dependencies=[Depends(require_api_key)])

VERSION_HEADER = "X-Workflow-Version"


def parse_workflow(document: dict[str, Any]) -> Workflow:
    """A Flow Engine workflow document -> the canonical workflow (400 naming the path)."""
    try:
        return workflow_from_flowengine(document)
    except FlowEngineFormatError as exc:
        raise ApiProblem(400, f"Invalid workflow: {exc}") from None


def _document(workflow: Workflow) -> Response:
    return JsonResponse(
        workflow_to_flowengine(workflow), headers={VERSION_HEADER: str(workflow.version)}
    )


@router.get(
    "/workflows",
    response_model=list[WorkflowSummary],
    responses=error_responses(ErrorBody, 401, 429),
    summary="List workflows",
)
async def list_workflows(request: Request) -> Response:
    """Every registered workflow: id, name, description and its node and connection counts."""
    workflows = await get_state(request).ready_platform.workflows.list()
    return JsonResponse([workflow_summary(workflow) for workflow in workflows])


@router.post(
    "/workflows",
    response_model=WorkflowCreated,
    responses=error_responses(ErrorBody, 400, 401, 409, 413, 429),
    openapi_extra=body_schema(FlowEngineWorkflow, "A workflow in the Flow Engine format."),
    summary="Register a workflow",
)
async def create_workflow(request: Request, principal: ApiKey) -> Response:
    """Register a new workflow (version 1). 409 if its id exists: update it with PUT."""
    workflow = parse_workflow(await read_object(request))
    platform = get_state(request).ready_platform
    saved = await platform.workflows.create(workflow, actor=principal.user_id)
    return JsonResponse(
        {"id": saved.id, "message": "Workflow created successfully", "version": saved.version}
    )


@router.get(
    "/workflows/{workflow_id}",
    response_model=FlowEngineWorkflow,
    responses=error_responses(ErrorBody, 401, 404, 429),
    summary="Read a workflow",
)
async def get_workflow(workflow_id: str, request: Request) -> Response:
    """The latest version, as it was registered (its version in ``X-Workflow-Version``)."""
    return _document(await get_state(request).ready_platform.workflows.get(workflow_id))


@router.put(
    "/workflows/{workflow_id}",
    response_model=WorkflowCreated,
    responses=error_responses(ErrorBody, 400, 401, 404, 413, 429),
    openapi_extra=body_schema(FlowEngineWorkflow, "The new definition (its id may be left out)."),
    summary="Update a workflow (a new version)",
)
async def update_workflow(workflow_id: str, request: Request, principal: ApiKey) -> Response:
    """Save a new version of an existing workflow; earlier versions stay readable and
    executable with ``?version=n``."""
    document = await read_object(request)
    document.setdefault("id", workflow_id)
    workflow = parse_workflow(document)
    platform = get_state(request).ready_platform
    saved = await platform.workflows.update(workflow_id, workflow, actor=principal.user_id)
    return JsonResponse(
        {"id": saved.id, "message": "Workflow updated successfully", "version": saved.version}
    )


@router.delete(
    "/workflows/{workflow_id}",
    response_model=Message,
    responses=error_responses(ErrorBody, 401, 404, 429),
    summary="Delete a workflow",
)
async def delete_workflow(workflow_id: str, request: Request) -> Response:
    """Delete a workflow: it is no longer listed nor executable; its history stays."""
    await get_state(request).ready_platform.workflows.delete(workflow_id)
    return JsonResponse({"message": "Workflow deleted successfully"})


@router.get(
    "/workflows/{workflow_id}/versions",
    response_model=list[WorkflowVersion],
    responses=error_responses(ErrorBody, 401, 404, 429),
    summary="List a workflow's versions",
)
async def list_versions(workflow_id: str, request: Request) -> Response:
    """Every saved version, oldest first."""
    versions = await get_state(request).ready_platform.workflows.versions(workflow_id)
    return JsonResponse([workflow_version(v.version, v.created_at, v.created_by) for v in versions])


@router.get(
    "/workflows/{workflow_id}/versions/{version}",
    response_model=FlowEngineWorkflow,
    responses=error_responses(ErrorBody, 400, 401, 404, 429),
    summary="Read one version of a workflow",
)
async def get_version(
    workflow_id: str, version: Annotated[int, Path(ge=1)], request: Request
) -> Response:
    """The workflow as it was at ``version``."""
    workflow = await get_state(request).ready_platform.workflows.get(workflow_id, version)
    return _document(workflow)


@router.post(
    "/workflows/{workflow_id}/execute",
    response_model=ExecuteResult,
    responses={
        202: {
            "model": ExecutionAccepted,
            "description": "With ?wait=false, or when the run waits for an approval",
        },
        **error_responses(ErrorBody, 400, 401, 404, 409, 413, 429, 500),
    },
    openapi_extra=body_schema(ExecuteRequest, "Inputs by port name; the body may be empty."),
    summary="Execute a workflow",
)
async def execute_workflow(
    workflow_id: str,
    request: Request,
    wait: Annotated[bool, Query(description="Wait for the end (default) or answer 202.")] = True,
    version: Annotated[int | None, Query(ge=1, description="Run this version.")] = None,
    simulate: Annotated[
        bool, Query(description="Side-effect nodes return their pinned output.")
    ] = False,
) -> Response:
    """Run the workflow with ``inputs``. Waits for the end and answers the node counts; a
    failed run answers 500 ``{"error": "Node execution failed: ..."}`` and is recorded."""
    body = await read_model(request, ExecuteRequest, optional=True)
    inputs = decode_inputs(body.inputs)
    executions = get_state(request).ready_platform.executions
    mode = ExecutionMode.SIMULATE if simulate else ExecutionMode.EXECUTE
    if not wait:
        execution = await executions.start(workflow_id, inputs, version=version, mode=mode)
        return JsonResponse({"execution_id": execution.id, "status": execution.status.value}, 202)
    report = await executions.run(workflow_id, inputs, version=version, mode=mode)
    return outcome_response(report, execute_result)


def outcome_response(report: ExecutionReport, render: Any) -> Response:
    """The answer to a run that was waited for: ``render(report)`` when it succeeded (202
    while it waits for an approval), 500 when it failed, 409 when it was cancelled."""
    execution = report.execution
    if execution.status is ExecutionStatus.FAILED:
        raise ApiProblem(500, failure_message(execution), extra={"execution_id": execution.id})
    if execution.status is ExecutionStatus.CANCELLED:
        raise ApiProblem(
            409, f"Execution {execution.id} was cancelled", extra={"execution_id": execution.id}
        )
    status = 200 if execution.status is ExecutionStatus.SUCCEEDED else 202
    return JsonResponse(render(report), status)
