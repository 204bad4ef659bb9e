"""Read a workflow file (Flow Engine wire format) and check it before anything runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runnel.cli.errors import UsageProblem
from runnel.engine.registry import NodeRegistry
from runnel.engine.validation import Problem, validate
from runnel.model.flowengine import FlowEngineFormatError, workflow_from_flowengine
from runnel.model.workflow import Workflow

__all__ = [
    "check_valid",
    "describe_problem",
    "invalid_workflow",
    "load_workflow",
    "problem_entry",
    "read_document",
]


def read_document(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a missing file or bad JSON is a ``UsageProblem``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageProblem(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(document, dict):
        raise UsageProblem(f"{path}: a workflow must be a JSON object")
    return document


def load_workflow(path: Path) -> Workflow:
    """Parse the Flow Engine workflow in ``path`` into the canonical model."""
    document = read_document(path)
    try:
        return workflow_from_flowengine(document)
    except FlowEngineFormatError as exc:
        raise UsageProblem(f"{path}: not a Flow Engine workflow: {exc}") from None


def describe_problem(problem: Problem) -> str:
    """One line naming where the problem is (node, edge, config path), what it is, its code."""
    return f"{problem} [{problem.code}]"


def problem_entry(problem: Problem) -> dict[str, Any]:
    """A validation problem as plain JSON."""
    return {
        "code": problem.code,
        "message": problem.message,
        "node_id": problem.node_id,
        "edge_id": problem.edge_id,
        "path": problem.path,
    }


def invalid_workflow(path: Path, problems: Sequence[Problem]) -> UsageProblem:
    """The ``UsageProblem`` that lists every one of ``problems``."""
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return UsageProblem(
        f"{path}: invalid workflow ({count} {noun})",
        [describe_problem(problem) for problem in problems],
    )


def check_valid(path: Path, workflow: Workflow, registry: NodeRegistry) -> None:
    """Raise a ``UsageProblem`` listing every validation problem of ``workflow``."""
    problems = validate(workflow, registry)
    if problems:
        raise invalid_workflow(path, problems)
