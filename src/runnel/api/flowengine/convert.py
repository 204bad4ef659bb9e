"""Canonical objects -> Flow Engine JSON (the one place for each response shape)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runnel.api.flowengine.events import millis, render_event, rfc3339, typed_ports
from runnel.model.events import Event
from runnel.model.execution import Execution, NodeRun
from runnel.model.flowengine import summary_to_flowengine
from runnel.model.values import encode
from runnel.model.workflow import Workflow
from runnel.services.executions import ExecutionReport

__all__ = [
    "event_page",
    "execute_result",
    "execution_detail",
    "execution_summary",
    "failure_message",
    "node_type_info",
    "typed_outputs",
    "workflow_summary",
    "workflow_version",
]


def _time(timestamp: float | None) -> str | None:
    return None if timestamp is None else rfc3339(timestamp)


def workflow_summary(workflow: Workflow) -> dict[str, Any]:
    """A ``GET /api/workflows`` entry: the seed's fields plus ``version``."""
    return {**summary_to_flowengine(workflow), "version": workflow.version}


def workflow_version(version: int, created_at: float, created_by: str | None) -> dict[str, Any]:
    return {"version": version, "created_at": rfc3339(created_at), "created_by": created_by}


def node_type_info(manifest: Any) -> dict[str, Any]:
    """A ``GET /api/nodes`` entry from a node manifest."""
    return {
        "type": manifest.type,
        "description": manifest.description,
        "category": manifest.category,
        "aliases": list(manifest.aliases),
        "inputs": [port.name for port in manifest.inputs],
        "outputs": [port.name for port in manifest.outputs],
    }


def typed_outputs(outputs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """``{node: {port: value}}`` -> the same with typed values."""
    return {str(node): typed_ports(ports) for node, ports in (outputs or {}).items()}


def failure_message(execution: Execution) -> str:
    """The seed's ``Node execution failed: ...`` line for a failed execution."""
    error = execution.error
    if error is None:
        return "Node execution failed"
    node_id = error.details.get("node_id") if error.details else None
    where = f"node {node_id}: " if node_id and str(node_id) not in error.message else ""
    return f"Node execution failed: {where}{error.message}"


def execute_result(report: ExecutionReport) -> dict[str, Any]:
    """``POST /execute``'s answer: the seed's three fields plus status and outputs."""
    return {
        "execution_id": report.execution.id,
        "completed_nodes": report.completed_nodes,
        "total_nodes": report.total_nodes,
        "status": report.execution.status.value,
        "outputs": typed_outputs(report.execution.outputs),
    }


def execution_summary(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "workflow_id": execution.workflow_id,
        "workflow_version": execution.workflow_version,
        "status": execution.status.value,
        "mode": execution.mode.value,
        "trigger": execution.trigger,
        "created_at": _time(execution.created_at),
        "started_at": _time(execution.started_at),
        "finished_at": _time(execution.finished_at),
        "duration_ms": millis(execution.duration_ms),
        "error": execution.error.message if execution.error is not None else None,
    }


def _node_run(run: NodeRun, node_type: str | None) -> dict[str, Any]:
    return {
        "node_id": run.node_id,
        "node_type": node_type,
        "status": run.status.value,
        "attempt": run.attempt,
        "outputs": typed_ports(run.outputs) if run.outputs is not None else None,
        "error": run.error.message if run.error is not None else None,
        "error_kind": run.error.kind if run.error is not None else None,
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
        "duration_ms": millis(run.duration_ms),
    }


def execution_detail(
    report: ExecutionReport, node_types: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``GET /api/executions/{id}``: status, inputs, timings and every node run."""
    execution = report.execution
    types = node_types or {}
    return {
        **execution_summary(execution),
        "inputs": {str(k): encode(v) for k, v in execution.inputs.items()},
        "outputs": typed_outputs(execution.outputs) if execution.outputs is not None else None,
        "completed_nodes": report.completed_nodes,
        "total_nodes": report.total_nodes,
        "nodes": [_node_run(run, types.get(run.node_id)) for run in report.node_runs],
    }


def event_page(execution_id: str, events: Iterable[Event], after_seq: int) -> dict[str, Any]:
    """Stored events as Flow Engine wire events; ``last_seq`` counts the unsent ones too."""
    rendered: list[dict[str, Any]] = []
    last = after_seq
    for event in events:
        last = max(last, event.seq)
        body = render_event(event)
        if body is not None:
            rendered.append(body)
    return {"execution_id": execution_id, "events": rendered, "last_seq": last}
