"""``/health`` (public) and ``/api/nodes``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from runnel.api.common.auth import require_api_key
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import error_responses
from runnel.api.common.state import get_state
from runnel.api.common.version import runnel_version
from runnel.api.flowengine.convert import node_type_info
from runnel.api.flowengine.schemas import ErrorBody, Health, NodeTypeInfo

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, summary="Is the server up")
async def health() -> Response:
    """Public: ``{"status": "healthy", "version", "service": "flowengine"}``."""
    return JsonResponse({"status": "healthy", "version": runnel_version(), "service": "flowengine"})


@router.get(
    "/api/nodes",
    response_model=list[NodeTypeInfo],
    dependencies=[Depends(require_api_key)],
    responses=error_responses(ErrorBody, 401, 429),
    summary="List node types",
)
async def list_nodes(request: Request) -> Response:
    """Every node type: type, description, category, aliases and port names."""
    registry = get_state(request).ready_platform.registry
    return JsonResponse([node_type_info(manifest) for manifest in registry.manifests()])
