"""The Flow Engine error format: ``{"error": "..."}`` (runnel may add fields)."""

from __future__ import annotations

from starlette.responses import Response

from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.problems import ApiProblem

__all__ = ["render_error"]


def render_error(problem: ApiProblem) -> Response:
    """The one place a problem becomes a Flow Engine error response."""
    body = {"error": problem.message, **problem.extra}
    return JsonResponse(body, problem.status_code, headers=problem.headers)
