"""Reading JSON request bodies: one parser and one set of 400 messages for every route.

Routes read their bodies here instead of through FastAPI's body parameters, so that a
malformed body, a wrong type or a typed value that does not fit is always a 400 that names
the field (and a body over the limit a 413, raised while it streams in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from runnel.api.common.problems import ApiProblem, describe_validation_errors
from runnel.model.values import TypedValueError, decode, describe_kind

__all__ = ["MAX_DEPTH", "decode_inputs", "read_json", "read_model", "read_object"]

_Model = TypeVar("_Model", bound=BaseModel)
_MISSING: Any = object()

#: Deepest nesting of arrays and objects a body may have (the store's JSON encoder stops at
#: a few hundred levels, and no workflow needs anywhere near this many).
MAX_DEPTH = 100


async def read_json(request: Request, *, default: Any = _MISSING) -> Any:
    """The request's JSON body; ``default`` for an empty body (400 if none is given)."""
    raw = await request.body()
    if not raw.strip():
        if default is _MISSING:
            raise ApiProblem(400, "Invalid request: the request needs a JSON body")
        return default
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(400, f"Invalid request: the body is not valid JSON: {exc}") from None
    if _too_deep(document, MAX_DEPTH):
        raise ApiProblem(
            400, f"Invalid request: the body is nested more than {MAX_DEPTH} levels deep"
        )
    return document


async def read_object(request: Request, *, default: Any = _MISSING) -> dict[str, Any]:
    """The request's body, which must be a JSON object."""
    document = await read_json(request, default=default)
    if not isinstance(document, dict):
        raise ApiProblem(
            400, f"Invalid request: the body must be a JSON object, got {describe_kind(document)}"
        )
    return document


async def read_model(request: Request, model: type[_Model], *, optional: bool = False) -> _Model:
    """The request's JSON body validated as ``model`` (an empty body is ``model()`` when
    ``optional``)."""
    document = await read_json(request, default={} if optional else _MISSING)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise ApiProblem(400, describe_validation_errors(errors)) from None


def decode_inputs(inputs: Mapping[str, Any], where: str = "inputs") -> dict[str, Any]:
    """Typed values (or plain JSON) -> plain values; 400 naming the input that does not fit."""
    try:
        return {key: decode(value, f"{where}.{key}") for key, value in inputs.items()}
    except TypedValueError as exc:
        raise ApiProblem(400, f"Invalid request: {exc.path}: {exc.message}") from None


def _too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value``."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) and item for item in level)
