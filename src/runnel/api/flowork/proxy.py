"""Proxied routes (seed 001, "Proxied Routes").

Public ones (``/localization/<lang>``, ``/news``, ``/components/<type>/<id>/icon``) are
answered by the embedded engine. Every other authenticated ``/api/v1/...`` request goes to
the caller's active engine: the one named by ``X-Engine-Id`` (the original GUI sends
``X-Flowork-Engine-ID``; both work), else their own. Access is checked first: only the
engine's owner and the users it is shared with get through (403 otherwise).

The engine routes runnel knows are declared one by one, so that ``/openapi.json`` shows
them; the catch-all, declared last, forwards anything else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.auth import enforce_rate_limit, rate_key
from runnel.api.common.openapi import body_schema, error_responses
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import SignedUser
from runnel.api.flowork.forward import forwarder
from runnel.api.flowork.schemas import (
    FloworkDashboard,
    FloworkError,
    FloworkMessage,
    FloworkPreset,
    FloworkPresetName,
    FloworkPresetSave,
    FloworkPresetUpdate,
    FloworkVariable,
    FloworkVariableData,
)

__all__ = ["catch_all_router", "router"]

router = APIRouter(prefix="/api/v1", tags=["flowork: proxied to the engine"])
#: Mounted after every other route of the app.
catch_all_router = APIRouter(prefix="/api/v1", tags=["flowork: proxied to the engine"])

#: Headers naming the engine a request is for.
ENGINE_HEADERS = ("x-engine-id", "x-flowork-engine-id")
_ENGINE_ERRORS = error_responses(FloworkError, 400, 401, 403, 404, 409, 429, 502, 503, 504)
_SHARED_PRESET = (
    " Another user's preset: `?owner_id=<their address>` with the share link's token in"
    " `X-Share-Token`."
)


async def _to_engine(request: Request, user: SignedUser) -> Response:
    """Forward to the caller's active engine, once they may use it."""
    requested = next(
        (request.headers[name] for name in ENGINE_HEADERS if request.headers.get(name)), None
    )
    engines = get_state(request).ready_platform.flowork.engines
    engine = await engines.active_engine(user.id, requested)
    return await forwarder(request).forward(request, engine, user)


async def _to_engine_named(name: str, request: Request, user: SignedUser) -> Response:
    """``_to_engine`` for the routes with a ``{name}`` (declared for the OpenAPI document)."""
    return await _to_engine(request, user)


async def _public(request: Request) -> Response:
    state = get_state(request)
    enforce_rate_limit(state, "public:" + rate_key(None, request))
    return await forwarder(request).forward(request, None, None)


# -- public --------------------------------------------------------------------------------


@router.get(
    "/localization/{lang_code}",
    responses={
        200: {"description": "The language's dictionary: {key: text}"},
        **error_responses(FloworkError, 404, 429),
    },
    summary="A language dictionary (public)",
)
async def localization(lang_code: str, request: Request) -> Response:
    """``en`` and ``id`` ship; a regional code (``en-US``) falls back to its language."""
    return await _public(request)


@router.get(
    "/news",
    responses={200: {"description": "The news feed (JSON)"}, **error_responses(FloworkError, 503)},
    summary="The news feed (public)",
)
async def news(request: Request) -> Response:
    """The JSON file configured as ``RUNNEL_NEWS_FILE`` (``[]`` without one)."""
    return await _public(request)


@router.get(
    "/components/{component_type}/{component_id}/icon",
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "An SVG"},
        **error_responses(FloworkError, 400, 429),
    },
    summary="A component's icon (public)",
)
async def component_icon(component_type: str, component_id: str, request: Request) -> Response:
    """Each built-in node type (by id or Flowork module id) has its own; anything else the
    default."""
    return await _public(request)


# -- authenticated, to the active engine ---------------------------------------------------

_ENGINE_ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("GET", "/presets", "List my presets", {"response_model": list[FloworkPresetName]}),
    (
        "POST",
        "/presets",
        "Save a preset (a new version)",
        {"response_model": FloworkPreset, "openapi_extra": body_schema(FloworkPresetSave)},
    ),
    (
        "GET",
        "/presets/{name}",
        "Load a preset (its hash chain checked)." + _SHARED_PRESET,
        {"response_model": FloworkPreset},
    ),
    (
        "PUT",
        "/presets/{name}",
        "Save a new version of a preset." + _SHARED_PRESET,
        {"response_model": FloworkPreset, "openapi_extra": body_schema(FloworkPresetUpdate)},
    ),
    ("DELETE", "/presets/{name}", "Delete a preset", {"response_model": FloworkMessage}),
    (
        "GET",
        "/variables",
        "List my variables (secrets masked)",
        {"response_model": list[FloworkVariable]},
    ),
    (
        "PUT",
        "/variables/{name}",
        "Create or replace a variable",
        {"response_model": FloworkVariable, "openapi_extra": body_schema(FloworkVariableData)},
    ),
    ("DELETE", "/variables/{name}", "Delete a variable", {"response_model": FloworkMessage}),
    (
        "GET",
        "/dashboard/summary",
        "Executions today and this week, running now, success rate, average duration",
        {"response_model": FloworkDashboard},
    ),
]

for _method, _path, _summary, _extra in _ENGINE_ROUTES:
    router.add_api_route(
        _path,
        _to_engine_named if "{name}" in _path else _to_engine,
        methods=[_method],
        summary=_summary.split(".")[0],
        description=_summary + " Goes to the active engine (X-Engine-Id, else your own).",
        responses=_ENGINE_ERRORS,
        name=f"engine {_method} {_path}",
        **_extra,
    )


async def any_engine_route(path: str, request: Request, user: SignedUser) -> Response:
    """Forwarded to the active engine (``X-Engine-Id``, else your own) after access is
    checked; the engine answers 404 for a route it does not have."""
    return await _to_engine(request, user)


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    catch_all_router.add_api_route(
        "/{path:path}",
        any_engine_route,
        methods=[_method],
        responses=_ENGINE_ERRORS,
        summary="Any other engine route",
        operation_id=f"flowork_engine_proxy_{_method.lower()}",
    )
