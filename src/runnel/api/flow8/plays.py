"""``/api/plays``: plays (executions of flows), their layers, approvals, cancelling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from runnel.api.common.body import read_model
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema
from runnel.api.common.problems import ApiProblem
from runnel.api.flow8.common import (
    Caller,
    PageParams,
    new_router,
    page_body,
    parse_time,
    platform_of,
)
from runnel.api.flow8.render import layer_json, play_json
from runnel.api.flow8.schemas import ApproveBody
from runnel.model.flow8 import PlayState

__all__ = ["router"]

router = new_router("plays")

_STATES = ", ".join(state.value for state in PlayState)


@router.get("/plays", summary="List plays")
async def list_plays(
    request: Request,
    caller: Caller,
    page: PageParams,
    flow_id: Annotated[str | None, Query(alias="flowId")] = None,
    state: Annotated[str | None, Query(description=f"One of {_STATES}.")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Created at or after (ISO 8601).")
    ] = None,
    to: Annotated[str | None, Query(description="Created before (ISO 8601).")] = None,
) -> Response:
    """Plays of the flows you may see, newest first."""
    wanted = None
    if state:
        try:
            wanted = PlayState(state.strip().upper())
        except ValueError:
            raise ApiProblem(
                400, f"Invalid request: query parameter 'state' must be one of {_STATES}"
            ) from None
    plays, total = await platform_of(request).flow8.plays.list(
        caller,
        flow_id=flow_id,
        state=wanted,
        since=parse_time(from_, "from"),
        until=parse_time(to, "to"),
        limit=page.size,
        offset=page.offset,
    )
    return JsonResponse(page_body([play_json(play) for play in plays], total, page))


@router.get("/plays/{play_id}", summary="Get a play")
async def get_play(play_id: str, request: Request, caller: Caller) -> Response:
    """The play with its state, args, times, error (``{code, message, ref}``) and the
    outputs of its last flowlets; ``layers`` lists every flowlet's result."""
    flow8 = platform_of(request).flow8
    play = await flow8.plays.get(caller, play_id)
    layers = await flow8.plays.layers(caller, play_id)
    return JsonResponse({**play_json(play), "layers": [layer_json(layer) for layer in layers]})


@router.get("/plays/{play_id}/layers", summary="Get a play's layer results")
async def get_play_layers(play_id: str, request: Request, caller: Caller) -> Response:
    """``[{id, ref, state, startedAt, completedAt, out, error, attempts}]`` in flow order."""
    layers = await platform_of(request).flow8.plays.layers(caller, play_id)
    return JsonResponse([layer_json(layer) for layer in layers])


@router.post(
    "/plays/{play_id}/approve",
    summary="Approve or reject a waiting flowlet",
    openapi_extra=body_schema(ApproveBody, "{ref, approved, comment}"),
)
async def approve_play(play_id: str, request: Request, caller: Caller) -> Response:
    """``{ref, approved, comment}``: approving runs the flowlet, rejecting fails it; who
    decided is recorded. 409 when that flowlet does not wait for an approval."""
    body = await read_model(request, ApproveBody)
    play = await platform_of(request).flow8.plays.approve(
        caller, play_id, body.ref, body.approved, body.comment
    )
    return JsonResponse(play_json(play))


@router.delete("/plays/{play_id}", summary="Cancel a play")
async def cancel_play(play_id: str, request: Request, caller: Caller) -> Response:
    """Cancel a play that has not ended: it ends ``FAIL`` with error code ``CANCELLED``."""
    play = await platform_of(request).flow8.plays.cancel(caller, play_id)
    return JsonResponse(play_json(play))
