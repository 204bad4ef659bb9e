"""``/api/v1/variables``: the caller's variables (secrets masked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from runnel.api.common.body import read_object
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.flowork.engine_api.context import EngineCaller, caller_of, context_of
from runnel.api.flowork.wire import variable_json

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/variables")

Caller = Annotated[EngineCaller, Depends(caller_of)]


@router.get("")
async def list_variables(request: Request, caller: Caller) -> Response:
    variables = await context_of(request).variables.list(caller.address)
    return JsonResponse([variable_json(variable) for variable in variables])


@router.put("/{name}")
async def put_variable(name: str, request: Request, caller: Caller) -> Response:
    """Create or replace ``name`` from ``{value, values, mode, is_secret, is_enabled}``."""
    body = await read_object(request)
    variable = await context_of(request).variables.put(caller.address, name, body)
    return JsonResponse(variable_json(variable))


@router.delete("/{name}")
async def delete_variable(name: str, request: Request, caller: Caller) -> Response:
    await context_of(request).variables.delete(caller.address, name)
    return JsonResponse({"message": f"Variable {name} deleted"})
