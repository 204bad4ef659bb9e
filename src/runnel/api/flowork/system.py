"""Internal and system routes: the public health check, what engines fetch with their
token (``get-engine-auth-info``, the kill-switch list) or the gateway secret
(``claim-token``, the kill-switch list), and the operators' routes that edit the kill
switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from runnel.api.common.body import read_json, read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.api.common.version import runnel_version
from runnel.api.flowork.auth import (
    AdminCaller,
    GatewaySecret,
    GatewaySecretOrEngine,
    SignedEngine,
)
from runnel.api.flowork.schemas import (
    FloworkAuthInfo,
    FloworkClaimedToken,
    FloworkDisabledComponent,
    FloworkDisabledComponentAdd,
    FloworkError,
    FloworkHealth,
    FloworkMessage,
)
from runnel.api.flowork.wire import disabled_component_json
from runnel.services.kill_switch import KillSwitchService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["flowork: system"])


def _kill_switch(request: Request) -> KillSwitchService:
    return get_state(request).ready_platform.flowork.kill_switch


@router.get("/system/health", response_model=FloworkHealth, summary="Is the gateway up")
async def health() -> Response:
    """Public."""
    return JsonResponse({"status": "ok", "service": "gateway", "version": runnel_version()})


@router.get(
    "/engine/get-engine-auth-info",
    response_model=FloworkAuthInfo,
    responses=error_responses(FloworkError, 401, 429),
    summary="Who may use this engine (engine token)",
)
async def auth_info(request: Request, engine: SignedEngine) -> Response:
    """The lower-case addresses of the engine's owner and of the users it is shared with;
    ``owner_address`` (a runnel addition) tells the owner apart (null while the owner has
    no address)."""
    flowork = get_state(request).ready_platform.flowork
    owner = await flowork.identities.user_ref(engine.owner_id)
    return JsonResponse(
        {
            "authorized_addresses": await flowork.engines.authorized_addresses(engine.id),
            "owner_address": owner.address.lower() if owner.address else None,
        }
    )


@router.get(
    "/engine/claim-token",
    response_model=FloworkClaimedToken,
    dependencies=[GatewaySecret],
    responses=error_responses(FloworkError, 400, 401, 403, 404, 429),
    summary="Claim the token parked for a dashboard request (gateway secret)",
)
async def claim_token(
    request: Request,
    req_id: Annotated[str | None, Query(description="The dashboard's request id")] = None,
) -> Response:
    """The token ``select-for-auth`` parked under ``req_id``: once, within 300 s."""
    engines = get_state(request).ready_platform.flowork.engines
    engine_id, token = await engines.claim(req_id)
    return JsonResponse({"status": "success", "token": token, "engine_id": engine_id})


@router.get(
    "/system/disabled-components",
    response_model=list[str],
    dependencies=[GatewaySecretOrEngine],
    responses=error_responses(FloworkError, 401, 403, 429),
    summary="The kill-switch list (gateway secret or engine token)",
)
async def disabled_components(request: Request) -> Response:
    """The ids of the components disabled everywhere, as a plain array. For the gateway
    secret (``X-API-Key``) or a registered engine's token (``X-Engine-Token``)."""
    return JsonResponse(await _kill_switch(request).component_ids())


@router.get(
    "/admin/disabled-components",
    response_model=list[FloworkDisabledComponent],
    responses=error_responses(FloworkError, 401, 403, 429),
    summary="The kill-switch list with details (operators)",
)
async def list_disabled(request: Request, operator: AdminCaller) -> Response:
    """For the gateway secret or a signed request of an administrator."""
    entries = await _kill_switch(request).entries()
    return JsonResponse([disabled_component_json(entry) for entry in entries])


@router.post(
    "/admin/disabled-components",
    status_code=201,
    response_model=FloworkDisabledComponent,
    responses=error_responses(FloworkError, 400, 401, 403, 429),
    openapi_extra=body_schema(FloworkDisabledComponentAdd),
    summary="Disable a component everywhere (operators)",
)
async def disable(request: Request, operator: AdminCaller) -> Response:
    """It fails wherever it would run from now on, and connected engines are told."""
    body = await read_object(request)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiProblem(400, "Invalid request: reason must be a string")
    entry = await _kill_switch(request).disable(body.get("component_id"), reason, operator)
    return JsonResponse(disabled_component_json(entry), 201)


@router.put(
    "/admin/disabled-components",
    response_model=list[str],
    responses=error_responses(FloworkError, 400, 401, 403, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "string"}}}
            },
        }
    },
    summary="Replace the kill-switch list (operators)",
)
async def replace(request: Request, operator: AdminCaller) -> Response:
    body = await read_json(request)
    if not isinstance(body, list):
        raise ApiProblem(400, "Invalid request: the body must be an array of component ids")
    return JsonResponse(await _kill_switch(request).replace(body, operator))


@router.delete(
    "/admin/disabled-components/{component_id}",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 400, 401, 403, 404, 429),
    summary="Enable a component again (operators)",
)
async def enable(component_id: str, request: Request, operator: AdminCaller) -> Response:
    await _kill_switch(request).enable(component_id)
    return JsonResponse({"message": f"Component {component_id} enabled"})
