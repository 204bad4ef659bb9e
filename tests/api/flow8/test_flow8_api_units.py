"""flow8's edge, piece by piece: the error format and codes, pagination, times."""

from __future__ import annotations

import json

import pytest

from runnel.api.common.problems import ApiProblem
from runnel.api.flow8.common import Page, iso, page_body, parse_time
from runnel.api.flow8.errors import problem_for, render_error
from runnel.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProblemDetail,
    Unauthorized,
)
from runnel.services.flows import FlowDisabled
from runnel.services.sessions import TooManyAttempts


def body_of(problem: ApiProblem) -> dict[str, object]:
    response = render_error(problem)
    assert response.status_code == problem.status_code
    document: dict[str, object] = json.loads(bytes(response.body))
    return document


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("flow", "65abc123"), 404, "FLOW_NOT_FOUND"),
        (NotFound("execution", "p1"), 404, "PLAY_NOT_FOUND"),
        (NotFound("workflow", "w"), 404, "FLOW_NOT_FOUND"),
        (NotFound("api key", "k"), 404, "API_KEY_NOT_FOUND"),
        (NotFound("kv entry", "k"), 404, "KV_ENTRY_NOT_FOUND"),
        (InvalidInput("bad", [ProblemDetail("must be", "name")]), 400, "VALIDATION_ERROR"),
        (Unauthorized("who?"), 401, "UNAUTHORIZED"),
        (Forbidden("no"), 403, "FORBIDDEN"),
        (Conflict("later"), 409, "CONFLICT"),
        (FlowDisabled("off"), 409, "FLOW_DISABLED"),
        (TooManyAttempts(30.2), 429, "TOO_MANY_REQUESTS"),
    ],
)
def test_service_errors_become_flow8_errors(error: Exception, status: int, code: str) -> None:
    assert isinstance(error, Exception)
    problem = problem_for(error)  # type: ignore[arg-type]
    body = body_of(problem)
    assert body["error"] == code and body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]


def test_the_seed_example_error() -> None:
    assert body_of(problem_for(NotFound("flow", "65abc123"))) == {
        "error": "FLOW_NOT_FOUND",
        "message": "Flow with ID 65abc123 not found",
        "statusCode": 404,
    }


def test_details_name_each_problem() -> None:
    body = body_of(problem_for(InvalidInput("bad flow", [ProblemDetail("is required", "name")])))
    assert body["details"] == [{"field": "name", "message": "is required", "code": "invalid"}]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "VALIDATION_ERROR"),
        (401, "UNAUTHORIZED"),
        (404, "NOT_FOUND"),
        (405, "METHOD_NOT_ALLOWED"),
        (413, "PAYLOAD_TOO_LARGE"),
        (429, "TOO_MANY_REQUESTS"),
        (500, "INTERNAL_ERROR"),
    ],
)
def test_statuses_without_a_code_get_the_generic_one(status: int, code: str) -> None:
    assert body_of(ApiProblem(status))["error"] == code


def test_too_many_attempts_says_when_to_retry() -> None:
    problem = problem_for(TooManyAttempts(30.2))
    assert problem.headers == {"Retry-After": "30"}


def test_pages() -> None:
    assert page_body([1, 2], 142, Page(0, 25)) == {
        "data": [1, 2],
        "total": 142,
        "page": 0,
        "size": 25,
        "pages": 6,
    }
    assert page_body([], 0, Page(3, 10))["pages"] == 0
    assert Page(2, 25).offset == 50


def test_times() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1705314600.5) == "2024-01-15T10:30:00.500Z"
    assert iso(None) is None
    assert parse_time("2024-01-15T10:30:00Z", "t") == 1705314600.0
    assert parse_time("2024-01-15T11:30:00+01:00", "t") == 1705314600.0
    assert parse_time(1705314600500, "t") == 1705314600.5  # JavaScript milliseconds
    assert parse_time("", "t") is None
    for bad in ("soon", True, "nan"):
        with pytest.raises(ApiProblem):
            parse_time(bad, "t")
