"""``/api/kv``: the KV store (your own scope, or a group's with ``groupId``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from runnel.api.common.body import read_model
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema
from runnel.api.flow8.common import Caller, PageParams, new_router, page_body, platform_of
from runnel.api.flow8.render import kv_json
from runnel.api.flow8.schemas import KvBody

__all__ = ["router"]

router = new_router("kv")


@router.get("/kv", summary="List KV entries")
async def list_kv(
    request: Request,
    caller: Caller,
    page: PageParams,
    prefix: Annotated[str, Query(max_length=512, description="Keys starting with this.")] = "",
    group_id: Annotated[str | None, Query(alias="groupId")] = None,
) -> Response:
    """Live entries by key (expired ones are gone)."""
    entries, total = await platform_of(request).flow8.kv.list(
        caller, prefix=prefix, group_id=group_id, limit=page.size, offset=page.offset
    )
    return JsonResponse(page_body([kv_json(entry) for entry in entries], total, page))


@router.post(
    "/kv",
    summary="Set a KV value",
    openapi_extra=body_schema(KvBody, "{key, value, ttlSeconds?, groupId?}"),
)
async def set_kv(request: Request, caller: Caller) -> Response:
    """``{key, value, ttlSeconds?, groupId?}``: insert or replace; any JSON value up to the
    size limit. Flows read it as ``$kv.<key>``."""
    body = await read_model(request, KvBody)
    entry = await platform_of(request).flow8.kv.put(
        caller, body.key, body.value, ttl_seconds=body.ttlSeconds, group_id=body.groupId
    )
    return JsonResponse(kv_json(entry))


@router.delete("/kv/{entry_id}", summary="Delete a KV entry")
async def delete_kv(entry_id: str, request: Request, caller: Caller) -> Response:
    await platform_of(request).flow8.kv.delete(caller, entry_id)
    return JsonResponse({"message": "KV entry deleted", "id": entry_id})
