"""Workflow share links: ``/api/v1/workflows/{preset_name}/shares``,
``/api/v1/workflow-shares/{share_id}`` and the public ``resolve/{share_token}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.auth import enforce_rate_limit, rate_key
from runnel.api.common.body import read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import SignedUser
from runnel.api.flowork.schemas import (
    FloworkError,
    FloworkShareLink,
    FloworkShareLinkCreate,
    FloworkShareLinkUpdate,
    FloworkShareResolved,
)
from runnel.api.flowork.wire import share_grant_json, share_link_json
from runnel.services.share_links import ShareLinkService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["flowork: workflow share links"])


def _links(request: Request) -> ShareLinkService:
    return get_state(request).ready_platform.flowork.share_links


@router.get(
    "/workflows/{preset_name}/shares",
    response_model=list[FloworkShareLink],
    responses=error_responses(FloworkError, 400, 401, 429),
    summary="List a workflow's share links",
)
async def list_links(preset_name: str, request: Request, user: SignedUser) -> Response:
    """The share links of one of your presets, newest first."""
    links = await _links(request).list(user.id, preset_name)
    return JsonResponse([share_link_json(link) for link in links])


@router.post(
    "/workflows/{preset_name}/shares",
    status_code=201,
    response_model=FloworkShareLink,
    responses=error_responses(FloworkError, 400, 401, 429),
    openapi_extra=body_schema(FloworkShareLinkCreate),
    summary="Create a share link",
)
async def create_link(preset_name: str, request: Request, user: SignedUser) -> Response:
    """A new link to one of your presets: ``view`` lets its holder load the workflow,
    ``view-run`` also run it, ``view-edit-run`` also save it."""
    body = await read_object(request)
    link = await _links(request).create(
        user.id, preset_name, body.get("permission_level"), body.get("link_name")
    )
    return JsonResponse(
        {"message": "Share link created successfully.", **share_link_json(link)}, 201
    )


@router.put(
    "/workflow-shares/{share_id}",
    response_model=FloworkShareLink,
    responses=error_responses(FloworkError, 400, 401, 404, 429),
    openapi_extra=body_schema(FloworkShareLinkUpdate),
    summary="Change a share link's permission",
)
async def update_link(share_id: str, request: Request, user: SignedUser) -> Response:
    """Change the level of a link you own; it counts from the link's next use."""
    body = await read_object(request)
    link = await _links(request).update(user.id, share_id, body.get("permission_level"))
    return JsonResponse({"message": "Permission updated successfully.", **share_link_json(link)})


@router.delete(
    "/workflow-shares/{share_id}",
    responses=error_responses(FloworkError, 401, 404, 429),
    summary="Delete a share link",
)
async def delete_link(share_id: str, request: Request, user: SignedUser) -> Response:
    """Delete a link you own: it stops granting at once."""
    await _links(request).delete(user.id, share_id)
    return JsonResponse({"status": "success", "message": "Share link deleted."})


@router.get(
    "/workflow-shares/resolve/{share_token}",
    response_model=FloworkShareResolved,
    responses=error_responses(FloworkError, 404, 429),
    summary="Resolve a share token (public)",
)
async def resolve(share_token: str, request: Request) -> Response:
    """Public: what a token grants (the workflow, its owner, the level), as of now."""
    state = get_state(request)
    enforce_rate_limit(state, "share:" + rate_key(None, request))
    grant = await state.ready_platform.flowork.share_links.resolve(share_token)
    return JsonResponse(share_grant_json(grant))
