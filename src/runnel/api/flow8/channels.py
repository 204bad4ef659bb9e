"""``/api/channels``: notification channels (webhook, Slack, email); credentials masked."""

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
from runnel.api.flow8.render import channel_json, merged
from runnel.api.flow8.schemas import ChannelBody

__all__ = ["router"]

router = new_router("channels")


@router.get("/channels", summary="List channels")
async def list_channels(request: Request, caller: Caller, page: PageParams) -> Response:
    channels, total = await platform_of(request).flow8.channels.list(
        caller, limit=page.size, offset=page.offset
    )
    return JsonResponse(page_body([channel_json(c) for c in channels], total, page))


@router.post(
    "/channels",
    status_code=201,
    summary="Create a channel",
    openapi_extra=body_schema(ChannelBody, "A channel."),
)
async def create_channel(request: Request, caller: Caller) -> Response:
    """``{name, type: webhook|slack|email, config, groupId?}``; see the channel types in
    the service's documentation. Credentials are encrypted at rest and never shown."""
    body = await read_model(request, ChannelBody)
    channel = await platform_of(request).flow8.channels.create(
        caller, body.name, body.type, body.config, body.groupId
    )
    return JsonResponse(channel_json(channel), 201)


@router.get("/channels/{channel_id}", summary="Get a channel")
async def get_channel(channel_id: str, request: Request, caller: Caller) -> Response:
    channel = await platform_of(request).flow8.channels.get(caller, channel_id)
    return JsonResponse(channel_json(channel))


@router.put(
    "/channels/{channel_id}",
    summary="Update a channel",
    openapi_extra=body_schema(ChannelBody, "The fields to change."),
)
async def update_channel(channel_id: str, request: Request, caller: Caller) -> Response:
    """Fields left out keep their values; a credential left out or sent masked keeps its
    stored value."""
    changes = await read_object(request)
    channels = platform_of(request).flow8.channels
    current = channel_json(await channels.get(caller, channel_id))
    config_changes = changes.get("config")
    if isinstance(config_changes, dict) and changes.get("type", current["type"]) == current["type"]:
        changes = {**changes, "config": {**current["config"], **config_changes}}
    body = validated(ChannelBody, merged(current, changes))
    channel = await channels.update(
        caller,
        channel_id,
        name=body.name,
        kind=body.type,
        settings=body.config,
        group_id=body.groupId,
        change_group="groupId" in changes,
    )
    return JsonResponse(channel_json(channel))


@router.delete("/channels/{channel_id}", summary="Delete a channel")
async def delete_channel(channel_id: str, request: Request, caller: Caller) -> Response:
    await platform_of(request).flow8.channels.delete(caller, channel_id)
    return JsonResponse({"message": "Channel deleted", "id": channel_id})


@router.post("/channels/{channel_id}/test", summary="Send a test message (runnel)")
async def test_channel(channel_id: str, request: Request, caller: Caller) -> Response:
    """Deliver a test message now: 200 ``{ok: true, detail}``, or a 502
    ``DELIVERY_FAILED`` saying why not."""
    delivery = await platform_of(request).flow8.channels.test(caller, channel_id)
    return JsonResponse(
        {
            "ok": True,
            "channelId": delivery.channel_id,
            "type": delivery.type,
            "detail": delivery.detail,
        }
    )
