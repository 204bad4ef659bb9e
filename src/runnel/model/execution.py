"""Executions and node runs: what happened when a workflow ran."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runnel.model._fastinit import fast_init

__all__ = [
    "ApprovalDecision",
    "Execution",
    "ExecutionMode",
    "ExecutionStatus",
    "NodeError",
    "NodeRun",
    "NodeStatus",
]


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_EXECUTION


_FINISHED_EXECUTION = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    FILTERED = "filtered"
    WAITING = "waiting"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_NODE


_FINISHED_NODE = frozenset(
    {
        NodeStatus.SUCCEEDED,
        NodeStatus.FAILED,
        NodeStatus.SKIPPED,
        NodeStatus.FILTERED,
        NodeStatus.CANCELLED,
    }
)


class ExecutionMode(StrEnum):
    EXECUTE = "execute"
    #: Side-effect nodes return their pinned output or a dry-run description.
    SIMULATE = "simulate"


@dataclass(frozen=True, slots=True)
class NodeError:
    message: str
    #: A short machine-readable kind: ``timeout``, ``cancelled``, ``expression``, ``node``...
    kind: str = "node"
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "kind": self.kind}
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    approved: bool
    by: str | None = None
    comment: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class NodeRun:
    """The latest state of one node in one execution (a checkpoint row)."""

    execution_id: str
    node_id: str
    status: NodeStatus
    attempt: int = 0
    inputs: Mapping[str, Any] | None = None
    #: Ports that fired, with their values.
    outputs: Mapping[str, Any] | None = None
    error: NodeError | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: What a waiting node waits for: ``{"kind": "approval", ...}`` or ``{"kind": "timer", ...}``.
    wait: Mapping[str, Any] | None = None
    decision: ApprovalDecision | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) * 1000.0


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    workflow_id: str
    workflow_version: int
    status: ExecutionStatus = ExecutionStatus.QUEUED
    mode: ExecutionMode = ExecutionMode.EXECUTE
    inputs: Mapping[str, Any] = field(default_factory=dict)
    #: Outputs of the end nodes (nodes with no outgoing edge that ran): node id -> port -> value.
    outputs: Mapping[str, Mapping[str, Any]] | None = None
    error: NodeError | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    parent_id: str | None = None
    #: What started it: ``manual``, ``api``, ``webhook``, ``cron``, ``subworkflow``...
    trigger: str = "manual"
    attempt: int = 1

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) * 1000.0


# Made per node run (and per row read): the faster __init__ (same signature).
for _cls in (NodeError, NodeRun, Execution):
    fast_init(_cls)
del _cls
