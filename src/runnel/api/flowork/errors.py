"""The Flowork error format: ``{"error": "..."}`` (a 400 may add ``problems``)."""

from __future__ import annotations

from starlette.responses import Response

from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.problems import ApiProblem

__all__ = ["render_error"]


def render_error(problem: ApiProblem) -> Response:
    """The one place a problem becomes a Flowork error response."""
    body = {"error": problem.message, **problem.extra}
    return JsonResponse(body, problem.status_code, headers=problem.headers)
