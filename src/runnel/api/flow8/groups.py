"""``/api/groups``: groups and their members' roles (owner, editor, runner, viewer)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from runnel.api.common.body import read_model, read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema
from runnel.api.flow8.common import (
    Caller,
    PageParams,
    new_router,
    page_body,
    platform_of,
    validated,
)
from runnel.api.flow8.render import group_json, merged
from runnel.api.flow8.schemas import GroupBody, MemberBody
from runnel.services.groups import MemberSpec

__all__ = ["router"]

router = new_router("groups")


def _members(members: list[MemberBody] | None) -> list[MemberSpec] | None:
    if members is None:
        return None
    return [MemberSpec(m.role, user_id=m.userId, email=m.email) for m in members]


@router.get("/groups", summary="List groups")
async def list_groups(request: Request, caller: Caller, page: PageParams) -> Response:
    """The groups you are a member of (all of them for admins)."""
    groups, total = await platform_of(request).flow8.groups.list(
        caller, limit=page.size, offset=page.offset
    )
    return JsonResponse(page_body([group_json(group) for group in groups], total, page))


@router.post(
    "/groups",
    status_code=201,
    summary="Create a group",
    openapi_extra=body_schema(GroupBody, "A group."),
)
async def create_group(request: Request, caller: Caller) -> Response:
    """``{name, description, members: [{userId | email, role}]}``; you are its owner."""
    body = await read_model(request, GroupBody)
    group = await platform_of(request).flow8.groups.create(
        caller, body.name, body.description, _members(body.members) or []
    )
    return JsonResponse(group_json(group), 201)


@router.get("/groups/{group_id}", summary="Get a group")
async def get_group(group_id: str, request: Request, caller: Caller) -> Response:
    return JsonResponse(group_json(await platform_of(request).flow8.groups.get(caller, group_id)))


@router.put(
    "/groups/{group_id}",
    summary="Update a group",
    openapi_extra=body_schema(GroupBody, "The fields to change."),
)
async def update_group(group_id: str, request: Request, caller: Caller) -> Response:
    """Rename, describe, or replace the members (``members`` given); owners only.
    Fields left out keep their values."""
    changes = await read_object(request)
    groups = platform_of(request).flow8.groups
    current = {**group_json(await groups.get(caller, group_id)), "members": None}
    body = validated(GroupBody, merged(current, changes))
    group = await groups.update(
        caller,
        group_id,
        name=body.name,
        description=body.description,
        members=_members(body.members) if "members" in changes else None,
    )
    return JsonResponse(group_json(group))


@router.delete("/groups/{group_id}", summary="Delete a group")
async def delete_group(group_id: str, request: Request, caller: Caller) -> Response:
    """Owners only; what the group held stays with the users who own it."""
    await platform_of(request).flow8.groups.delete(caller, group_id)
    return JsonResponse({"message": "Group deleted", "id": group_id})
