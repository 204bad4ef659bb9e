"""``/api/v1/presets``: the caller's presets, and another user's through a share link.

``owner_id`` (query) names another user's preset (their address or user id); a share
link's token (``X-Share-Token``) must grant the action: loading (any level), saving
(``view-edit-run``). Deleting is for the owner only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runnel.api.common.body import read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.flowork.engine_api.context import EngineCaller, caller_of, context_of
from runnel.api.flowork.wire import iso, preset_json
from runnel.services.errors import Forbidden, NotFound
from runnel.services.share_links import PresetAction

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/presets")

Caller = Annotated[EngineCaller, Depends(caller_of)]
OwnerId = Annotated[str | None, Query(description="Another user's preset (with X-Share-Token)")]


async def _owner(
    request: Request, caller: EngineCaller, owner_id: str | None, name: str, action: PresetAction
) -> str:
    """Whose preset ``name`` a request means: without a share link, the caller's own;
    with one, its owner's (``owner_id``, if given, must be that owner), if the link grants
    ``action`` on that preset."""
    token = caller.share_token
    if token is None:
        mine = {caller.address, (caller.user_id or caller.address).lower()}
        if owner_id is None or owner_id.strip().lower() in mine:
            return caller.address
        raise Forbidden("Another user's preset needs a share link: send its token in X-Share-Token")
    grant = await context_of(request).share_grants.authorize(token, owner_id, name, action)
    if grant.owner_address is None:
        raise NotFound("preset", name)
    return grant.owner_address


@router.get("")
async def list_presets(request: Request, caller: Caller) -> Response:
    """``[{name, version, updated_at}]``: the caller's presets, by name."""
    summaries = await context_of(request).presets.list(caller.address)
    return JsonResponse(
        [
            {"name": s.name, "version": s.latest_version, "updated_at": iso(s.updated_at)}
            for s in summaries
        ]
    )


@router.post("", status_code=201)
async def create_preset(request: Request, caller: Caller) -> Response:
    """Save ``{name, workflow_data, signature}`` as the next version of the caller's preset."""
    body = await read_object(request)
    preset = await context_of(request).presets.save(
        caller.address,
        body.get("name"),
        body.get("workflow_data"),
        body.get("signature"),
        caller.address,
    )
    return JsonResponse(preset_json(preset), 201)


@router.get("/{name}")
async def load_preset(
    name: str, request: Request, caller: Caller, owner_id: OwnerId = None
) -> Response:
    """The latest version, its history checked (409 when the chain is broken)."""
    owner = await _owner(request, caller, owner_id, name, PresetAction.LOAD)
    return JsonResponse(preset_json(await context_of(request).presets.load(owner, name)))


@router.put("/{name}")
async def save_preset(
    name: str, request: Request, caller: Caller, owner_id: OwnerId = None
) -> Response:
    """Save ``{workflow_data, signature}`` as the next version (signed by the caller)."""
    owner = await _owner(request, caller, owner_id, name, PresetAction.SAVE)
    body = await read_object(request)
    preset = await context_of(request).presets.save(
        owner, name, body.get("workflow_data"), body.get("signature"), caller.address
    )
    return JsonResponse(preset_json(preset))


@router.delete("/{name}")
async def delete_preset(name: str, request: Request, caller: Caller) -> Response:
    await context_of(request).presets.delete(caller.address, name)
    return JsonResponse({"message": f"Preset {name} deleted"})
