"""What flow8's routes share: pagination, times, the caller, the router factory."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from runnel.api.common.auth import ApiKey, require_api_key
from runnel.api.common.problems import ApiProblem, describe_validation_errors
from runnel.api.common.state import get_state
from runnel.api.common.times import iso_utc_or_none as iso
from runnel.api.flow8.errors import Flow8Route
from runnel.platform import Platform

__all__ = [
    "DEFAULT_SIZE",
    "MAX_SIZE",
    "Caller",
    "Page",
    "PageParams",
    "iso",
    "new_router",
    "page_body",
    "parse_time",
    "platform_of",
    "validated",
]

DEFAULT_SIZE: Final = 25
MAX_SIZE: Final = 100

#: The caller of a flow8 route (API key or session cookie).
Caller = ApiKey


@dataclass(frozen=True, slots=True)
class Page:
    """``?page=0&size=25``: a zero-based page of at most ``MAX_SIZE`` items."""

    page: int
    size: int

    @property
    def offset(self) -> int:
        return self.page * self.size


def _page(
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page number.")] = 0,
    size: Annotated[
        int, Query(ge=1, description=f"Items per page (at most {MAX_SIZE}).")
    ] = DEFAULT_SIZE,
) -> Page:
    # Beyond the maximum a page is the maximum, as the seed's table says ("Max 100").
    return Page(page, min(size, MAX_SIZE))


PageParams = Annotated[Page, Depends(_page)]


def page_body(items: Sequence[Any], total: int, page: Page) -> dict[str, Any]:
    """``{data, total, page, size, pages}``."""
    return {
        "data": list(items),
        "total": total,
        "page": page.page,
        "size": page.size,
        "pages": math.ceil(total / page.size) if total else 0,
    }


def parse_time(value: Any, name: str, *, numbers_are_ms: bool = True) -> float | None:
    """An ISO 8601 time or epoch milliseconds (as JavaScript sends them) -> unix seconds;
    400 naming ``name`` otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ApiProblem(400, f"Invalid request: {name}: expected an ISO 8601 time")
    if isinstance(value, int | float):
        seconds = float(value) / (1000.0 if numbers_are_ms else 1.0)
    else:
        text = str(value).strip()
        try:
            seconds = float(text) / (1000.0 if numbers_are_ms else 1.0)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ApiProblem(
                    400,
                    f"Invalid request: {name}: expected an ISO 8601 time"
                    f" (2024-01-15T10:30:00Z) or epoch milliseconds, got {text!r}",
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise ApiProblem(400, f"Invalid request: {name} must be finite")
    return seconds


def platform_of(request: Request) -> Platform:
    return get_state(request).ready_platform


def new_router(tag: str) -> APIRouter:
    """A router of flow8 routes: every one needs a caller, and errors carry flow8 codes."""
    return APIRouter(
        prefix="/api",
        tags=[f"flow8 {tag}"],
        route_class=Flow8Route,
        dependencies=[Depends(require_api_key)],
    )


_Model = TypeVar("_Model", bound=BaseModel)


def validated(model: type[_Model], document: Any) -> _Model:
    """``document`` as ``model``; 400 naming each field that does not fit."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise ApiProblem(400, describe_validation_errors(errors)) from None
