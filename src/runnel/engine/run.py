"""The executor's inputs and outputs: one request in, one result out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runnel.model.checkpoint import ResumeState
from runnel.model.execution import (
    Execution,
    ExecutionMode,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.model.workflow import Workflow

__all__ = ["ExecutionResult", "ResumeState", "RunRequest"]


@dataclass(frozen=True, slots=True)
class RunRequest:
    execution_id: str
    workflow: Workflow
    inputs: Mapping[str, Any] = field(default_factory=dict)
    mode: ExecutionMode = ExecutionMode.EXECUTE
    resume: ResumeState | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: Nesting depth for sub-workflows.
    depth: int = 0
    parent_id: str | None = None
    #: Whole-workflow attempt (``RetryWorkflow``), counted from 1.
    attempt: int = 1
    #: The execution row does not exist yet: the run's first written checkpoint inserts
    #: it (a run started in-process, without going through the queue).
    create: Execution | None = None
    #: For a workflow whose ``settings.save_history`` is not ``all``: keep the run's
    #: checkpoints in memory and write them only if the run must become durable (it pauses
    #: or waits) or its history is kept (``failed`` and it failed). Only for a host that
    #: owns the run in this process (the embedded worker): after a crash such a run starts
    #: again from its beginning, or (never written) is gone.
    history_in_memory: bool = False


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    execution_id: str
    status: ExecutionStatus
    #: The latest run of every node that got one.
    node_runs: Mapping[str, NodeRun]
    #: Outputs of the end nodes that ran: node id -> port -> value.
    outputs: Mapping[str, Mapping[str, Any]]
    error: NodeError | None
    started_at: float
    finished_at: float | None
    total_nodes: int
    #: The next free event seq, for a later resume.
    next_seq: int

    @property
    def completed_nodes(self) -> int:
        """Nodes that finished with success (the Flow Engine ``completed_nodes``)."""
        return sum(1 for run in self.node_runs.values() if run.status is NodeStatus.SUCCEEDED)

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) * 1000.0
