"""``/api/v1/user/state/{key}``: the caller's persistent GUI state (``favorite_presets``
and any other key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.body import read_json
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import error_responses
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import SignedUser
from runnel.api.flowork.schemas import FloworkError, FloworkMessage

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/user/state", tags=["flowork: user state"])

_ANY_JSON: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The new value. favorite_presets: an array of preset ids (strings).",
        "content": {"application/json": {"schema": {}}},
    }
}


@router.get(
    "/{key}",
    responses={
        200: {"description": "The value (favorite_presets: an array of strings; [] if unset)"},
        **error_responses(FloworkError, 400, 401, 404, 429),
    },
    summary="Read a state key",
)
async def get_key(key: str, request: Request, user: SignedUser) -> Response:
    """The value under ``key``."""
    value = await get_state(request).ready_platform.flowork.user_state.get(user.id, key)
    return JsonResponse(value)


@router.put(
    "/{key}",
    responses={
        200: {"description": "The value as stored"},
        **error_responses(FloworkError, 400, 401, 409, 413, 429),
    },
    openapi_extra=_ANY_JSON,
    summary="Replace a state key",
)
async def put_key(key: str, request: Request, user: SignedUser) -> Response:
    """Overwrite the value under ``key`` (favorite_presets: at most 500 distinct strings)."""
    value = await read_json(request)
    stored = await get_state(request).ready_platform.flowork.user_state.put(user.id, key, value)
    return JsonResponse(stored)


@router.delete(
    "/{key}",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 400, 401, 404, 429),
    summary="Delete a state key",
)
async def delete_key(key: str, request: Request, user: SignedUser) -> Response:
    await get_state(request).ready_platform.flowork.user_state.delete(user.id, key)
    return JsonResponse({"message": f"State key {key} deleted"})
