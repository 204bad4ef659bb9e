"""``/api/v1/user``: the caller's engines, their tokens, the engines shared with them, and
authorizing an engine from its dashboard (``select-for-auth``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.body import read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import SignedUser
from runnel.api.flowork.schemas import (
    FloworkEngine,
    FloworkEngineCreate,
    FloworkEngineCreated,
    FloworkEngineRename,
    FloworkError,
    FloworkMessage,
    FloworkSelectForAuth,
    FloworkSharedEngine,
    FloworkTokenReset,
)
from runnel.api.flowork.wire import engine_json, shared_engine_json
from runnel.services.engines import EngineService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/user", tags=["flowork: engines"])


def _engines(request: Request) -> EngineService:
    return get_state(request).ready_platform.flowork.engines


@router.get(
    "/engines",
    response_model=list[FloworkEngine],
    responses=error_responses(FloworkError, 401, 429),
    summary="List my engines",
)
async def list_engines(request: Request, user: SignedUser) -> Response:
    """The engines the caller owns, with their online status."""
    engines = await _engines(request).list_owned(user.id)
    return JsonResponse([engine_json(engine) for engine in engines])


@router.post(
    "/engines",
    status_code=201,
    response_model=FloworkEngineCreated,
    responses=error_responses(FloworkError, 400, 401, 429),
    openapi_extra=body_schema(FloworkEngineCreate),
    summary="Register an engine",
)
async def register_engine(request: Request, user: SignedUser) -> Response:
    """A new engine and its token (``raw_token``), shown this once: put it in the
    engine's ``FLOWORK_ENGINE_TOKEN``."""
    body = await read_object(request)
    engine, token = await _engines(request).register(user.id, body.get("name"))
    return JsonResponse(
        {"id": engine.id, "name": engine.name, "status": engine.status, "raw_token": token}, 201
    )


@router.delete(
    "/engines/{engine_id}",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 401, 403, 404, 409, 429),
    summary="Delete an engine",
)
async def delete_engine(engine_id: str, request: Request, user: SignedUser) -> Response:
    """Delete an engine you own (its shares go with it; its connection is ended)."""
    await _engines(request).delete(user.id, engine_id)
    return JsonResponse({"message": "Engine deleted successfully"})


@router.post(
    "/engines/{engine_id}/reset-token",
    response_model=FloworkTokenReset,
    responses=error_responses(FloworkError, 401, 403, 404, 429),
    summary="Reset an engine's token",
)
async def reset_token(engine_id: str, request: Request, user: SignedUser) -> Response:
    """A new token for an engine you own, shown this once. The old one stops working at
    once and a connection made with it is ended."""
    token = await _engines(request).reset_token(user.id, engine_id)
    return JsonResponse(
        {"message": "The engine's token was reset", "token": token, "engine_id": engine_id}
    )


@router.put(
    "/engines/{engine_id}/update-name",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 400, 401, 403, 404, 429),
    openapi_extra=body_schema(FloworkEngineRename),
    summary="Rename an engine",
)
async def rename_engine(engine_id: str, request: Request, user: SignedUser) -> Response:
    """Rename an engine you own."""
    body = await read_object(request)
    engine = await _engines(request).rename(user.id, engine_id, body.get("name"))
    return JsonResponse(
        {"message": f"Engine '{engine.name}' updated successfully.", **engine_json(engine)}
    )


@router.get(
    "/shared-engines",
    response_model=list[FloworkSharedEngine],
    responses=error_responses(FloworkError, 401, 429),
    summary="List the engines shared with me",
)
async def shared_engines(request: Request, user: SignedUser) -> Response:
    """Engines other users shared with the caller, with their owners."""
    shared = await _engines(request).list_shared_with(user.id)
    return JsonResponse([shared_engine_json(item) for item in shared])


@router.post(
    "/engines/select-for-auth",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 400, 401, 403, 404, 409, 429),
    openapi_extra=body_schema(FloworkSelectForAuth),
    summary="Authorize an engine from its dashboard",
)
async def select_for_auth(request: Request, user: SignedUser) -> Response:
    """The engine's dashboard asked for a token under ``request_id``: the engine's token
    is replaced and the new one waits 300 s for ``GET /api/v1/engine/claim-token``."""
    body = await read_object(request)
    await _engines(request).select_for_auth(user.id, body.get("request_id"), body.get("engine_id"))
    return JsonResponse(
        {
            "status": "success",
            "message": "Engine selected and authorized. The engine can now claim its new token.",
        }
    )
