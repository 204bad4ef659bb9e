"""The flow8 error format, and the one mapping of failures to its codes.

Every error under flow8's paths is ``{"error": CODE, "message": "...", "statusCode": n}``
(plus ``details`` listing each problem of a bad input). Codes: ``UNAUTHORIZED``,
``FORBIDDEN``, ``NOT_FOUND`` (no such route), ``<THING>_NOT_FOUND`` (``FLOW_NOT_FOUND``,
``PLAY_NOT_FOUND``, ``LAYER_NOT_FOUND``, ``GROUP_NOT_FOUND``, ``KV_ENTRY_NOT_FOUND``,
``CHANNEL_NOT_FOUND``, ``SCHEDULE_NOT_FOUND``, ``API_KEY_NOT_FOUND``, ``USER_NOT_FOUND``),
``VALIDATION_ERROR``, ``CONFLICT`` (or a more precise one such as ``FLOW_DISABLED``),
``PAYLOAD_TOO_LARGE``, ``TOO_MANY_REQUESTS``, ``DELIVERY_FAILED``, ``INTERNAL_ERROR``.

flow8's routes use ``Flow8Route``, which turns a service error into an ``ApiProblem``
carrying its code; anything else (the router's 404, the body limit's 413, the rate limit's
429, a bug's 500) reaches ``render_error`` with only a status, and gets the status's code.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.problems import ApiProblem
from runnel.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unauthorized,
)
from runnel.services.sessions import TooManyAttempts

__all__ = ["CODE", "Flow8Route", "problem_for", "render_error"]

#: The key of ``ApiProblem.extra`` that carries the flow8 code (not rendered as a field).
CODE: Final = "flow8_code"

_STATUS_CODES: Final = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "DELIVERY_FAILED",
    503: "SERVICE_UNAVAILABLE",
}
#: Kinds the services name differently from flow8.
_KINDS: Final = {"execution": "play", "workflow": "flow"}


def _kind_code(kind: str) -> str:
    kind = _KINDS.get(kind, kind)
    return "".join(ch if ch.isalnum() else "_" for ch in kind).upper() + "_NOT_FOUND"


def problem_for(exc: ServiceError) -> ApiProblem:
    """A service error as the flow8 problem that answers it."""
    code = getattr(exc, "code", None)
    if isinstance(exc, NotFound):
        kind = _KINDS.get(exc.kind, exc.kind)
        message = f"{kind[:1].upper()}{kind[1:]} with ID {exc.ident} not found"
        return ApiProblem(404, message, extra={CODE: code or _kind_code(exc.kind)})
    if isinstance(exc, InvalidInput):
        details = [{"field": p.where, "message": p.message, "code": p.code} for p in exc.problems]
        extra: dict[str, Any] = {CODE: code or "VALIDATION_ERROR"}
        if details:
            extra["details"] = details
        return ApiProblem(400, exc.message, extra=extra)
    if isinstance(exc, Unauthorized):
        return ApiProblem(
            401,
            exc.message,
            headers={"WWW-Authenticate": "Bearer"},
            extra={CODE: code or "UNAUTHORIZED"},
        )
    if isinstance(exc, Forbidden):
        return ApiProblem(403, exc.message, extra={CODE: code or "FORBIDDEN"})
    if isinstance(exc, TooManyAttempts):
        retry = str(max(1, round(exc.retry_after)))
        return ApiProblem(
            429, exc.message, headers={"Retry-After": retry}, extra={CODE: "TOO_MANY_REQUESTS"}
        )
    if isinstance(exc, Conflict):
        return ApiProblem(409, exc.message, extra={CODE: code or "CONFLICT"})
    if code == "DELIVERY_FAILED":
        return ApiProblem(502, exc.message, extra={CODE: code})
    return ApiProblem(400, exc.message, extra={CODE: code or "BAD_REQUEST"})


def render_error(problem: ApiProblem) -> Response:
    """The one place a problem becomes a flow8 error response."""
    extra = dict(problem.extra)
    code = extra.pop(CODE, None) or _STATUS_CODES.get(problem.status_code, "ERROR")
    body: dict[str, Any] = {
        "error": code,
        "message": problem.message,
        "statusCode": problem.status_code,
    }
    if "details" in extra:
        body["details"] = extra["details"]
    elif "problems" in extra:  # a service error that reached the app's handler
        body["details"] = extra["problems"]
    return JsonResponse(body, problem.status_code, headers=problem.headers)


class Flow8Route(APIRoute):
    """A route whose service errors carry flow8's codes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                raise problem_for(exc) from None

        return handle
