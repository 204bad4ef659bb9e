"""``/api/flows``: flows, their flowlets (``/layers``) and running them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from runnel.api.common.body import read_json, read_model, read_object
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
from runnel.api.flow8.render import (
    flow_json,
    flow_spec,
    flowlet_json,
    flowlet_spec,
    merged,
)
from runnel.api.flow8.schemas import FlowBody, FlowletBody, RunBody
from runnel.model.flow8 import PlayState

__all__ = ["router"]

router = new_router("flows")


@router.get("/flows", summary="List flows")
async def list_flows(
    request: Request,
    caller: Caller,
    page: PageParams,
    group_id: Annotated[str | None, Query(alias="groupId")] = None,
) -> Response:
    """The flows you own or share a group with (every flow for admins), oldest first."""
    flows, total = await platform_of(request).flow8.flows.list(
        caller, group_id=group_id, limit=page.size, offset=page.offset
    )
    return JsonResponse(page_body([flow_json(flow) for flow in flows], total, page))


@router.post(
    "/flows",
    status_code=201,
    summary="Create a flow",
    openapi_extra=body_schema(FlowBody, "A flow."),
)
async def create_flow(request: Request, caller: Caller) -> Response:
    """``{name, category, enabled, groupId, flowlets, notify, executionConfig}``; each
    flowlet ``{ref, appId, args, filters, timeout, retry, onError, deferAfterMs,
    needsApproval, skipOutputMapping}``. An unknown ``appId`` is a 400 listing the known."""
    body = await read_model(request, FlowBody)
    flow = await platform_of(request).flow8.flows.create(caller, flow_spec(body))
    return JsonResponse(flow_json(flow), 201)


@router.get("/flows/{flow_id}", summary="Get a flow")
async def get_flow(flow_id: str, request: Request, caller: Caller) -> Response:
    return JsonResponse(flow_json(await platform_of(request).flow8.flows.get(caller, flow_id)))


@router.put(
    "/flows/{flow_id}",
    summary="Update a flow",
    openapi_extra=body_schema(FlowBody, "The fields to change."),
)
async def update_flow(flow_id: str, request: Request, caller: Caller) -> Response:
    """Fields left out keep their values; ``flowlets``, when given, replaces the list
    (flowlets keep their ids by ``id`` or ``ref``). Saving makes a new version."""
    changes = await read_object(request)
    flows = platform_of(request).flow8.flows
    current = flow_json(await flows.get(caller, flow_id))
    body = validated(FlowBody, merged(current, changes))
    if "group" in changes and "groupId" not in changes:
        body = body.model_copy(update={"groupId": body.group})
    flow = await flows.update(caller, flow_id, flow_spec(body))
    return JsonResponse(flow_json(flow))


@router.delete("/flows/{flow_id}", summary="Delete a flow")
async def delete_flow(flow_id: str, request: Request, caller: Caller) -> Response:
    """It is no longer listed nor runnable; its plays stay readable."""
    await platform_of(request).flow8.flows.delete(caller, flow_id)
    return JsonResponse({"message": "Flow deleted", "id": flow_id})


@router.post(
    "/flows/{flow_id}/run",
    status_code=202,
    summary="Trigger a play",
    openapi_extra=body_schema(RunBody, "{args} (optional)."),
)
async def run_flow(flow_id: str, request: Request, caller: Caller) -> Response:
    """``{args}`` (optional): answers ``{playId, state}`` at once; follow the play with
    ``GET /api/plays/:id`` or ``/api/ws``."""
    document = await read_json(request, default={})
    body = validated(RunBody, document)
    execution = await platform_of(request).flow8.flows.run(caller, flow_id, body.args)
    return JsonResponse({"playId": execution.id, "state": PlayState.NEW.value}, 202)


# -- flowlets ("layers") -------------------------------------------------------------------


@router.get("/flows/{flow_id}/layers", summary="List a flow's flowlets")
async def list_layers(flow_id: str, request: Request, caller: Caller, page: PageParams) -> Response:
    flowlets = await platform_of(request).flow8.flows.layers(caller, flow_id)
    chunk = flowlets[page.offset : page.offset + page.size]
    return JsonResponse(page_body([flowlet_json(f) for f in chunk], len(flowlets), page))


@router.post(
    "/flows/{flow_id}/layers",
    status_code=201,
    summary="Add a flowlet",
    openapi_extra=body_schema(FlowletBody, "A flowlet."),
)
async def add_layer(flow_id: str, request: Request, caller: Caller) -> Response:
    """A flowlet, appended (or inserted at ``position``); a new version of the flow."""
    body = await read_model(request, FlowletBody)
    _, flowlet = await platform_of(request).flow8.flows.add_layer(
        caller, flow_id, flowlet_spec(body), body.position
    )
    return JsonResponse(flowlet_json(flowlet), 201)


@router.put(
    "/flows/{flow_id}/layers/{layer_id}",
    summary="Update a flowlet",
    openapi_extra=body_schema(FlowletBody, "The fields to change."),
)
async def update_layer(flow_id: str, layer_id: str, request: Request, caller: Caller) -> Response:
    """Fields left out keep their values."""
    changes = await read_object(request)
    flows = platform_of(request).flow8.flows
    current = flowlet_json(await flows.layer(caller, flow_id, layer_id))
    body = validated(FlowletBody, merged(current, changes))
    _, flowlet = await flows.update_layer(caller, flow_id, layer_id, flowlet_spec(body))
    return JsonResponse(flowlet_json(flowlet))


@router.delete("/flows/{flow_id}/layers/{layer_id}", summary="Delete a flowlet")
async def delete_layer(flow_id: str, layer_id: str, request: Request, caller: Caller) -> Response:
    await platform_of(request).flow8.flows.delete_layer(caller, flow_id, layer_id)
    return JsonResponse({"message": "Layer deleted", "id": layer_id})
