"""Plain data: workflow graph, execution, node run, events, values. No I/O."""

from __future__ import annotations

from runnel.model.events import Event, EventType
from runnel.model.execution import (
    ApprovalDecision,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.model.workflow import (
    Edge,
    Node,
    OnError,
    Position,
    RetryPolicy,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowOnError,
    WorkflowSettings,
)

__all__ = [
    "ApprovalDecision",
    "Edge",
    "Event",
    "EventType",
    "Execution",
    "ExecutionMode",
    "ExecutionStatus",
    "Node",
    "NodeError",
    "NodeRun",
    "NodeStatus",
    "OnError",
    "Position",
    "RetryPolicy",
    "Trigger",
    "TriggerKind",
    "Workflow",
    "WorkflowOnError",
    "WorkflowSettings",
]
