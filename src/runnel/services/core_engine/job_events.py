"""Canonical execution events rendered as the Core Engine's job messages (seed 002).

One ``JobRenderer`` per job follows its executions' events in order and turns each into
zero or more Flowork messages (``NODE_EXECUTION_METRIC``, ``log``,
``CONNECTION_STATUS_UPDATE``, ``SHOW_DEBUG_POPUP``, ``MANUAL_APPROVAL_REQUESTED``).
``workflow_status_update`` is built by ``status_update``: which status a job shows when is
the job service's decision (a job may span several executions, one per loop iteration).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runnel.model.events import Event, EventType
from runnel.model.execution import ExecutionStatus, NodeStatus
from runnel.model.sizes import json_size
from runnel.model.workflow import Workflow

__all__ = [
    "EXECUTOR_SOURCE",
    "FLOWORK_STATUS",
    "JobRenderer",
    "JobStatus",
    "flowork_status",
    "iso_time",
    "log_message",
    "status_update",
]

#: runnel's execution statuses as Flowork names them (the one mapping; the gateway's
#: dashboard shows QUEUED and WAITING as they are).
FLOWORK_STATUS: Final[Mapping[ExecutionStatus, str]] = {
    ExecutionStatus.QUEUED: "QUEUED",
    ExecutionStatus.RUNNING: "RUNNING",
    ExecutionStatus.PAUSED: "PAUSED",
    ExecutionStatus.WAITING: "WAITING",
    ExecutionStatus.SUCCEEDED: "SUCCEEDED",
    ExecutionStatus.FAILED: "FAILED",
    ExecutionStatus.CANCELLED: "STOPPED",
}

#: The statuses a job shows (``workflow_status_update.status_data.status``).
JobStatus = str

# A job that is queued or waits for an approval is still under way for the GUI, which
# knows only RUNNING|PAUSED|SUCCEEDED|FAILED|STOPPED; the approval has its own message.
_JOB_FOLD: Final = {"QUEUED": "RUNNING", "WAITING": "RUNNING"}

_LOG_LEVELS: Final = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARN",
    "warn": "WARN",
    "error": "ERROR",
    "success": "SUCCESS",
    "critical": "CRITICAL",
}
EXECUTOR_SOURCE: Final = "Executor"


def flowork_status(status: ExecutionStatus) -> JobStatus:
    """The status a job shows for an execution status."""
    name = FLOWORK_STATUS[status]
    return _JOB_FOLD.get(name, name)


def iso_time(timestamp: float) -> str:
    """Unix seconds -> ``2024-01-15T10:30:00.005Z``, the wire time format of every dialect
    (``runnel.api.common.times.iso_utc``, which the services layer may not import)."""
    total_ms = math.floor(timestamp * 1000)
    seconds, ms = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def status_update(
    job_id: str,
    status: JobStatus,
    *,
    start_time: float | None,
    end_time: float | None = None,
    preset_name: str | None = None,
    active_node_id: str | None = None,
    error: str | None = None,
    result: Any = None,
) -> dict[str, Any]:
    """A ``workflow_status_update`` message: ``error`` when the job failed or stopped,
    ``result`` (the end nodes' outputs) when it succeeded."""
    data: dict[str, Any] = {
        "status": status,
        "start_time": None if start_time is None else iso_time(start_time),
        "end_time": None if end_time is None else iso_time(end_time),
        "preset_name": preset_name,
        "active_node_id": active_node_id,
    }
    if error is not None:
        data["error"] = error
    elif status == "SUCCEEDED":
        data["result"] = result
    return {"type": "workflow_status_update", "job_id": job_id, "status_data": data}


def log_message(
    job_id: str, message: str, *, level: str = "INFO", source: str = EXECUTOR_SOURCE, at: float
) -> dict[str, Any]:
    """A ``log`` message of job ``job_id`` (``source``: ``Executor`` or ``Node: <name>``)."""
    return {
        "type": "log",
        "workflow_context_id": job_id,
        "timestamp": iso_time(at),
        "source": source,
        "message": message,
        "level": level,
    }


@dataclass(slots=True)
class JobRenderer:
    """Renders one job's events; keeps what a later message needs (sizes, active node)."""

    job_id: str
    workflow: Workflow
    preset_name: str | None = None
    #: The node that started last and has not finished yet.
    active_node_id: str | None = None
    _inputs_size: dict[str, int] = field(default_factory=dict)
    _start_inputs_size: int = 0

    def begin(self, inputs: Mapping[str, Any]) -> None:
        """A new execution of the job starts with ``inputs`` (the start nodes' input)."""
        self._inputs_size = {}
        self._start_inputs_size = json_size(dict(inputs))
        self.active_node_id = None

    def render(self, event: Event) -> list[dict[str, Any]]:
        """The messages for ``event`` (execution-level events give none: see the module
        docstring)."""
        kind = event.type
        if kind is EventType.NODE_STARTED:
            return self._node_started(event)
        if kind is EventType.NODE_FINISHED:
            return self._node_finished(event)
        if kind is EventType.NODE_FAILED:
            return self._node_failed(event)
        if kind is EventType.NODE_EVENT:
            return self._node_event(event)
        if kind is EventType.EDGE_TRAVERSED:
            return self._edge(event)
        if kind is EventType.DEBUG_POPUP:
            return [
                {
                    "type": "SHOW_DEBUG_POPUP",
                    "workflow_context_id": self.job_id,
                    "title": event.data.get("title"),
                    "content": event.data.get("content"),
                }
            ]
        if kind is EventType.APPROVAL_REQUESTED:
            return [
                {
                    "type": "MANUAL_APPROVAL_REQUESTED",
                    "module_id": event.node_id,
                    "message": event.data.get("message", ""),
                    "workflow_context_id": self.job_id,
                }
            ]
        if kind is EventType.APPROVAL_RESOLVED:
            verdict = "approved" if event.data.get("approved") else "rejected"
            by = event.data.get("by")
            text = f"{self._label(event.node_id)} {verdict}" + (f" by {by}" if by else "")
            return [log_message(self.job_id, text, at=event.timestamp)]
        return []

    # -- nodes ---------------------------------------------------------------------------

    def _node_started(self, event: Event) -> list[dict[str, Any]]:
        self.active_node_id = event.node_id
        return [
            {
                "type": "NODE_EXECUTION_METRIC",
                "workflow_context_id": self.job_id,
                "node_id": event.node_id,
                "status": "RUNNING",
                "timestamp": iso_time(event.timestamp),
            }
        ]

    def _node_finished(self, event: Event) -> list[dict[str, Any]]:
        status = event.data.get("status")
        if status == NodeStatus.FAILED.value:
            return []  # its node.failed event ended it already
        if status in (NodeStatus.SKIPPED.value, NodeStatus.FILTERED.value):
            # Never started, so no metric: the GUI would show a node that did not run.
            return []
        ok = status == NodeStatus.SUCCEEDED.value
        return [
            self._metric_end(
                event,
                "SUCCESS" if ok else "ERROR",
                duration_ms=event.data.get("duration_ms"),
                size_out=event.data.get("outputs_size", 0),
            )
        ]

    def _node_failed(self, event: Event) -> list[dict[str, Any]]:
        error = event.data.get("error")
        message = error.get("message") if isinstance(error, Mapping) else str(error)
        source = f"Node: {self._label(event.node_id)}"
        if event.data.get("will_retry"):
            text = f"Attempt {event.data.get('attempt')} failed, retrying: {message}"
            return [log_message(self.job_id, text, level="WARN", source=source, at=event.timestamp)]
        return [
            log_message(
                self.job_id, str(message), level="ERROR", source=source, at=event.timestamp
            ),
            self._metric_end(event, "ERROR", duration_ms=event.data.get("duration_ms"), size_out=0),
        ]

    def _metric_end(
        self, event: Event, status: str, *, duration_ms: Any, size_out: Any
    ) -> dict[str, Any]:
        node_id = event.node_id or ""
        if self.active_node_id == node_id:
            self.active_node_id = None
        size_in = event.data.get("inputs_size")
        if not isinstance(size_in, int):
            size_in = self._inputs_size.get(node_id, self._start_inputs_size)
        return {
            "type": "NODE_EXECUTION_METRIC",
            "workflow_context_id": self.job_id,
            "node_id": node_id,
            "node_name": event.data.get("node_name") or self._label(node_id),
            "module_id": self._module_id(node_id),
            "preset_name": self.preset_name,
            "status": status,
            "timestamp": iso_time(event.timestamp),
            "execution_time_ms": round(float(duration_ms or 0.0), 3),
            "payload_size_in_bytes": size_in,
            "payload_size_out_bytes": size_out if isinstance(size_out, int) else 0,
        }

    def _node_event(self, event: Event) -> list[dict[str, Any]]:
        kind = event.data.get("kind")
        message = event.data.get("message", "")
        if kind == "log":
            level = _LOG_LEVELS.get(str(event.data.get("level", "info")).lower(), "INFO")
        elif kind == "warning":
            level = "WARN"
        elif kind == "info":
            level = "INFO"
        elif kind == "progress":
            level = "DEBUG"
            percent = f"{event.data.get('percent')}%"
            message = f"{message} ({percent})" if message else percent
        else:
            return []  # data events are outputs in progress, not log lines
        source = f"Node: {self._label(event.node_id)}"
        return [
            log_message(self.job_id, str(message), level=level, source=source, at=event.timestamp)
        ]

    def _edge(self, event: Event) -> list[dict[str, Any]]:
        target = event.data.get("target")
        if isinstance(target, str):
            self._inputs_size[target] = self._inputs_size.get(target, 0) + json_size(
                event.data.get("value")
            )
        return [
            {
                "type": "CONNECTION_STATUS_UPDATE",
                "workflow_context_id": self.job_id,
                "connection_id": event.data.get("edge_id"),
                "status": "ACTIVE",
            }
        ]

    # -- the workflow --------------------------------------------------------------------

    def _label(self, node_id: str | None) -> str:
        if node_id is None:
            return EXECUTOR_SOURCE
        try:
            return self.workflow.node(node_id).label
        except KeyError:
            return node_id

    def _module_id(self, node_id: str) -> str:
        """The node's Flowork module id as the GUI sent it, else its runnel type."""
        try:
            node = self.workflow.node(node_id)
        except KeyError:
            return ""
        meta = node.extra.get("flowork")
        if isinstance(meta, Mapping) and isinstance(meta.get("module_id"), str):
            return str(meta["module_id"])
        return node.type
