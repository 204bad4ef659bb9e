"""One error type for every HTTP failure, and which dialect renders it for which path.

Routes, dependencies and middlewares raise ``ApiProblem`` (or a service error); the app's one
exception handler turns any exception into an ``ApiProblem`` (``problem_from_exception``)
and hands it to the ``ErrorFormats`` renderer registered for the request's path prefix, so
each dialect writes its own error body in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from runnel.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unauthorized,
)

__all__ = [
    "ApiProblem",
    "ErrorFormats",
    "ErrorRenderer",
    "describe_validation_errors",
    "problem_from_exception",
]

log = logging.getLogger("runnel.api")

_REASONS: Final = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
}


class ApiProblem(HTTPException):
    """An HTTP failure: status, one-line message, extra headers and extra body fields.

    It subclasses Starlette's ``HTTPException`` so that FastAPI lets it through while it
    reads a request body (the body-size limit raises it from ``receive``).
    """

    def __init__(
        self,
        status_code: int,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        text = message or _REASONS.get(status_code, "Error")
        super().__init__(status_code, text, dict(headers) if headers else None)
        self.message = text
        self.extra: Mapping[str, Any] = extra or {}


#: Renders one problem as a dialect's error response.
ErrorRenderer = Callable[[ApiProblem], Response]


class ErrorFormats:
    """Which renderer writes the errors of which path prefix (the longest prefix wins)."""

    def __init__(self, default: ErrorRenderer) -> None:
        self._default = default
        self._prefixes: list[tuple[str, ErrorRenderer]] = []

    def register(self, prefix: str, renderer: ErrorRenderer) -> None:
        """Errors under ``prefix`` (whole path segments: ``/api/v1`` not ``/api/v10``)."""
        self._prefixes.append((prefix.rstrip("/"), renderer))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def renderer_for(self, path: str) -> ErrorRenderer:
        for prefix, renderer in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return renderer
        return self._default

    def render(self, path: str, problem: ApiProblem) -> Response:
        return self.renderer_for(path)(problem)

    def render_exception(self, exc: BaseException, method: str, path: str) -> Response:
        """The answer to any exception a request to ``path`` raised (the app's exception
        handler, and the ASGI fast paths that bypass it)."""
        return self.render(path, problem_from_exception(exc, method, path))


def problem_from_exception(
    exc: BaseException, method: str | None = None, path: str | None = None
) -> ApiProblem:
    """Any exception -> the ``ApiProblem`` that answers it (500 only for real bugs).
    ``method`` and ``path`` name the request in the router's own 404 and 405."""
    if isinstance(exc, ApiProblem):
        return exc
    if type(exc) is HTTPException and exc.status_code in (404, 405) and path is not None:
        if exc.status_code == 404:
            return ApiProblem(404, f"Not found: no route {method} {path}")
        return ApiProblem(405, f"Method {method} not allowed on {path}", headers=exc.headers)
    if isinstance(exc, ServiceError):
        return _from_service_error(exc)
    if isinstance(exc, RequestValidationError):
        return ApiProblem(400, describe_validation_errors(exc.errors()))
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else None
        return ApiProblem(exc.status_code, _tidy(detail, exc.status_code), headers=exc.headers)
    log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return ApiProblem(500)


def _from_service_error(exc: ServiceError) -> ApiProblem:
    if isinstance(exc, NotFound):
        return ApiProblem(404, exc.message)
    if isinstance(exc, Conflict):
        return ApiProblem(409, exc.message)
    if isinstance(exc, InvalidInput):
        problems = [{"message": p.message, "where": p.where, "code": p.code} for p in exc.problems]
        return ApiProblem(400, exc.message, extra={"problems": problems} if problems else None)
    if isinstance(exc, Unauthorized):
        return ApiProblem(401, exc.message, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, Forbidden):
        return ApiProblem(403, exc.message)
    return ApiProblem(400, exc.message)


def _tidy(detail: str | None, status: int) -> str:
    """Starlette's stock details ("Not Found") in the same sentence case as ours."""
    if not detail or detail.title() == detail:
        return _REASONS.get(status, detail or "Error")
    return detail


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line naming each field and its problem."""
    parts = [_describe_one(error) for error in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(parts) + more


def _describe_one(error: Any) -> str:
    loc = tuple(error.get("loc", ())) if isinstance(error, Mapping) else ()
    message = str(error.get("msg", "invalid")) if isinstance(error, Mapping) else str(error)
    kind = error.get("type") if isinstance(error, Mapping) else None
    source = str(loc[0]) if loc else "body"
    rest = loc[1:]
    if kind == "json_invalid":
        ctx = error.get("ctx") or {}
        where = f" at position {rest[0]}" if rest else ""
        return f"the body is not valid JSON{where}: {ctx.get('error', message)}"
    field = ".".join(str(part) for part in rest)
    if source == "body":
        if not field:
            if kind == "missing":
                return "the request needs a JSON body"
            return f"the body: {message}"
        return f"{field}: {message}"
    label = {"query": "query parameter", "path": "path parameter", "header": "header"}.get(
        source, source
    )
    return f"{label} {field!r}: {message}" if field else f"{label}: {message}"
