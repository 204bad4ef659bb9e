"""Pydantic wire schemas of the Flow Engine dialect: request bodies and, for OpenAPI, the
shapes of the responses (the routes build those with ``convert``, not through pydantic).

A workflow document is read by ``runnel.model.flowengine`` (which names the path of any
problem and keeps the document losslessly), so ``FlowEngineWorkflow`` and its parts only
document the format; ``ExecuteRequest`` is the one body pydantic validates itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApprovalRequest",
    "Connection",
    "ErrorBody",
    "EventPage",
    "ExecuteRequest",
    "ExecuteResult",
    "ExecutionAccepted",
    "ExecutionDetail",
    "ExecutionPage",
    "ExecutionSummary",
    "FlowEngineWorkflow",
    "Health",
    "Message",
    "NodeRunInfo",
    "NodeTypeInfo",
    "Problem",
    "TypedValue",
    "WorkflowCreated",
    "WorkflowNode",
    "WorkflowSummary",
    "WorkflowVersion",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class TypedValue(_Doc):
    """``{"type": T, "value": v}``; plain JSON is accepted wherever a typed value is."""

    type: Literal["Null", "Bool", "Number", "String", "Bytes", "Json", "Array", "Object"]
    value: Any = None


class Position(_Doc):
    x: float = 0
    y: float = 0


class RetryPolicy(_Doc):
    max_attempts: int = 1
    delay_ms: int = 0
    backoff_multiplier: float = 1.0
    max_delay_ms: int | None = None
    jitter: float | None = Field(None, description="runnel: fraction of each delay, random.")


class WorkflowNode(_Doc):
    id: str = Field(description="Any string, unique in the workflow.")
    node_type: str = Field(description="A node type id or alias (GET /api/nodes).")
    name: str | None = None
    config: dict[str, TypedValue | Any] = Field(default_factory=dict)
    position: Position | None = None
    retry_policy: RetryPolicy | None = None
    timeout_ms: int | None = Field(None, description="runnel extension.")
    on_error: Literal["stop", "continue", "skip"] | None = Field(
        None, description="runnel extension."
    )
    needs_approval: bool | None = Field(None, description="runnel extension.")


class Connection(_Doc):
    """``inputs[to_port] = outputs(from_node)[from_port]``."""

    from_node: str
    from_port: str = "value"
    to_node: str
    to_port: str = "value"
    id: str | None = Field(None, description="runnel extension; derived when absent.")


class TriggerType(_Doc):
    type: Literal["Manual", "Cron", "Webhook", "Event"]
    expression: str | None = Field(None, description="Cron")
    path: str | None = Field(None, description="Webhook: answered at POST /webhooks/{path}")
    respond: Literal["immediately", "when_finished"] | None = Field(
        None, description='Webhook (runnel): "immediately" answers 202 with the execution id.'
    )
    event_type: str | None = Field(None, description="Event")


class Trigger(_Doc):
    id: str
    trigger_type: TriggerType
    enabled: bool = True


class RetryWorkflow(_Doc):
    max_attempts: int


class RetryWorkflowOnError(_Doc):
    RetryWorkflow: RetryWorkflow


class WorkflowSettings(_Doc):
    max_parallel_nodes: int = 10
    on_error: Literal["StopWorkflow", "ContinueOnError"] | RetryWorkflowOnError = "StopWorkflow"
    max_execution_time_ms: int | None = None


class FlowEngineWorkflow(_Doc):
    """A workflow in the Flow Engine format (seed 004)."""

    id: str
    name: str = ""
    description: str = ""
    nodes: list[WorkflowNode] = Field(default_factory=list)
    connections: list[Connection] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    settings: WorkflowSettings | None = None


class ExecuteRequest(BaseModel):
    """``inputs`` go to the nodes without incoming connections, by port name."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Port name -> typed value (plain JSON accepted).",
        json_schema_extra={"example": {"url": {"type": "String", "value": "https://x.test"}}},
    )


class ApprovalRequest(BaseModel):
    """The decision on a node waiting for approval."""

    model_config = ConfigDict(extra="ignore")

    node_id: str
    approved: bool
    comment: str | None = None


# -- responses (documentation) ---------------------------------------------------------


class Problem(BaseModel):
    message: str
    where: str | None = None
    code: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": "..."}`` (runnel may add ``execution_id``, ``problems``)."""

    error: str
    execution_id: str | None = None
    problems: list[Problem] | None = None


class Health(BaseModel):
    status: Literal["healthy"]
    version: str
    service: Literal["flowengine"]


class WorkflowSummary(BaseModel):
    id: str
    name: str
    description: str
    nodes: int = Field(description="Number of nodes.")
    connections: int = Field(description="Number of connections.")
    version: int = Field(description="runnel: the latest version.")


class WorkflowCreated(BaseModel):
    id: str
    message: str
    version: int


class Message(BaseModel):
    message: str


class WorkflowVersion(BaseModel):
    version: int
    created_at: str
    created_by: str | None = None


class NodeTypeInfo(BaseModel):
    type: str
    description: str
    category: str
    aliases: list[str]
    inputs: list[str]
    outputs: list[str]


class ExecuteResult(BaseModel):
    execution_id: str
    completed_nodes: int
    total_nodes: int
    status: str = Field(description="runnel: succeeded, or waiting (answered with 202).")
    outputs: dict[str, dict[str, TypedValue]] = Field(
        description="runnel: end node id -> port -> typed value."
    )


class ExecutionAccepted(BaseModel):
    execution_id: str
    status: str


class ExecutionSummary(BaseModel):
    id: str
    workflow_id: str
    workflow_version: int
    status: Literal["queued", "running", "paused", "waiting", "succeeded", "failed", "cancelled"]
    mode: str
    trigger: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    error: str | None


class NodeRunInfo(BaseModel):
    node_id: str
    node_type: str | None
    status: str
    attempt: int
    outputs: dict[str, TypedValue] | None
    error: str | None
    error_kind: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None


class ExecutionDetail(ExecutionSummary):
    inputs: dict[str, TypedValue]
    outputs: dict[str, dict[str, TypedValue]] | None
    completed_nodes: int
    total_nodes: int
    nodes: list[NodeRunInfo]


class ExecutionPage(BaseModel):
    executions: list[ExecutionSummary]
    total: int
    limit: int
    offset: int


class EventPage(BaseModel):
    execution_id: str
    events: list[dict[str, Any]] = Field(description="Flow Engine wire events, by seq.")
    last_seq: int = Field(description="Pass as after_seq to read on.")
