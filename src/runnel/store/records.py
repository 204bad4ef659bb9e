"""Small read-only records the store returns besides the model's own types."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkflowVersionInfo"]


@dataclass(frozen=True, slots=True)
class WorkflowVersionInfo:
    """One saved version of a workflow, without its definition."""

    workflow_id: str
    version: int
    #: Unix time in seconds.
    created_at: float
    created_by: str | None
