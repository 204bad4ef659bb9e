"""``/api/schedules``: run a flow on a cron schedule in an IANA time zone."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
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
from runnel.api.flow8.render import merged, schedule_json
from runnel.api.flow8.schemas import ScheduleBody
from runnel.services.schedules import ScheduleSpec

__all__ = ["router"]

router = new_router("schedules")


def _spec(body: ScheduleBody) -> ScheduleSpec:
    return ScheduleSpec(
        flow_id=body.flowId,
        cron=body.cron,
        timezone=body.timezone,
        args=body.args,
        enabled=body.enabled,
        catchup=body.catchup,
    )


@router.get("/schedules", summary="List schedules")
async def list_schedules(
    request: Request,
    caller: Caller,
    page: PageParams,
    flow_id: Annotated[str | None, Query(alias="flowId")] = None,
) -> Response:
    schedules, total = await platform_of(request).flow8.schedules.list(
        caller, flow_id=flow_id, limit=page.size, offset=page.offset
    )
    return JsonResponse(page_body([schedule_json(s) for s in schedules], total, page))


@router.post(
    "/schedules",
    status_code=201,
    summary="Create a schedule",
    openapi_extra=body_schema(ScheduleBody, "A schedule."),
)
async def create_schedule(request: Request, caller: Caller) -> Response:
    """``{flowId, cron, timezone, args, enabled, catchup: none|latest|all}``; a bad cron or
    time zone is a 400 ``VALIDATION_ERROR`` saying why. The answer has ``nextRunAt``."""
    body = await read_model(request, ScheduleBody)
    schedule = await platform_of(request).flow8.schedules.create(caller, _spec(body))
    return JsonResponse(schedule_json(schedule), 201)


@router.get("/schedules/{schedule_id}", summary="Get a schedule")
async def get_schedule(schedule_id: str, request: Request, caller: Caller) -> Response:
    schedule = await platform_of(request).flow8.schedules.get(caller, schedule_id)
    return JsonResponse(schedule_json(schedule))


@router.put(
    "/schedules/{schedule_id}",
    summary="Update a schedule",
    openapi_extra=body_schema(ScheduleBody, "The fields to change."),
)
async def update_schedule(schedule_id: str, request: Request, caller: Caller) -> Response:
    """Fields left out keep their values; disabling stops it at once."""
    changes = await read_object(request)
    schedules = platform_of(request).flow8.schedules
    current = schedule_json(await schedules.get(caller, schedule_id))
    body = validated(ScheduleBody, merged(current, changes))
    schedule = await schedules.update(caller, schedule_id, _spec(body))
    return JsonResponse(schedule_json(schedule))


@router.delete("/schedules/{schedule_id}", summary="Delete a schedule")
async def delete_schedule(schedule_id: str, request: Request, caller: Caller) -> Response:
    await platform_of(request).flow8.schedules.delete(caller, schedule_id)
    return JsonResponse({"message": "Schedule deleted", "id": schedule_id})
