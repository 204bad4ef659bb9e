"""``/api/v1/engines/{engine_id}/shares``: who an engine is shared with (owner only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.body import read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import SignedUser
from runnel.api.flowork.schemas import (
    FloworkEngineShare,
    FloworkError,
    FloworkMessage,
    FloworkShareCreate,
    FloworkShareCreated,
)
from runnel.api.flowork.wire import engine_share_json
from runnel.services.engine_sharing import EngineSharingService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/engines", tags=["flowork: engine sharing"])


def _sharing(request: Request) -> EngineSharingService:
    return get_state(request).ready_platform.flowork.sharing


@router.get(
    "/{engine_id}/shares",
    response_model=list[FloworkEngineShare],
    responses=error_responses(FloworkError, 401, 403, 404, 429),
    summary="List an engine's shares",
)
async def list_shares(engine_id: str, request: Request, user: SignedUser) -> Response:
    """The users an engine you own is shared with."""
    shares = await _sharing(request).list(user.id, engine_id)
    return JsonResponse([engine_share_json(share) for share in shares])


@router.post(
    "/{engine_id}/shares",
    status_code=201,
    response_model=FloworkShareCreated,
    responses=error_responses(FloworkError, 400, 401, 403, 404, 409, 429),
    openapi_extra=body_schema(FloworkShareCreate),
    summary="Share an engine",
)
async def share(engine_id: str, request: Request, user: SignedUser) -> Response:
    """Share an engine you own with a user, named by username or address (an address
    without an account gets one). The engine is told to refresh its authorization list."""
    body = await read_object(request)
    created = await _sharing(request).share(user.id, engine_id, body.get("share_with_identifier"))
    return JsonResponse(
        {"message": "Engine shared successfully.", "shared_with": engine_share_json(created)}, 201
    )


@router.delete(
    "/{engine_id}/shares/{shared_user_id}",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 401, 403, 404, 429),
    summary="Revoke a share",
)
async def revoke(
    engine_id: str, shared_user_id: str, request: Request, user: SignedUser
) -> Response:
    """Take a user's access to an engine you own away, at once."""
    await _sharing(request).revoke(user.id, engine_id, shared_user_id)
    return JsonResponse({"message": "Share revoked successfully."})
