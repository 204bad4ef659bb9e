"""What every API dialect shares: errors, body limit, request ids, auth, rate limits,
metrics, OpenAPI helpers and the app state."""

from __future__ import annotations

from runnel.api.common.problems import ApiProblem, ErrorFormats, problem_from_exception
from runnel.api.common.state import ApiState, get_state

__all__ = ["ApiProblem", "ApiState", "ErrorFormats", "get_state", "problem_from_exception"]
