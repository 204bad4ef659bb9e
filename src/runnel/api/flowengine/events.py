"""Flow Engine wire events: the one renderer of canonical events for this dialect.

Seed types, each with ``execution_id`` and ``timestamp`` (RFC 3339, UTC, milliseconds):
``WorkflowStarted {workflow_id}``, ``NodeStarted {node_id, node_type}``, ``NodeCompleted
{node_id, outputs (typed), duration_ms}``, ``NodeFailed {node_id, error}``, ``NodeEvent
{node_id, event: {event_type: Info|Warning {message} | Progress {percent, message?} | Data
{port, value}}}``, ``WorkflowCompleted {success, duration_ms}``.

runnel adds ``workflow_id`` and ``seq`` (per execution, for replay with ``after_seq``) to every
event, a few fields to some (``attempt``, ``status``, ``error``), and the types
``NodeSkipped``, ``ExecutionStatusChanged``, ``ApprovalRequested`` and ``ApprovalResolved``;
a client that switches on the seed's types ignores them. ``edge.traversed`` is not sent (it
stays in the store), so ``seq`` may skip numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from runnel.api.common.jsonbody import dumps
from runnel.api.common.times import iso_utc as rfc3339
from runnel.bus import EncodeCache
from runnel.model.events import Event, EventType
from runnel.model.values import encode, to_json

__all__ = [
    "FORMAT_NAME",
    "encode_event",
    "lagged_message",
    "millis",
    "render_event",
    "rfc3339",
    "typed_ports",
]

#: The ``EncodeCache`` format name of this dialect's socket frames.
FORMAT_NAME: Final = "flowengine"


def millis(duration_ms: Any) -> int | None:
    """A duration in whole milliseconds (the seed's ``duration_ms`` is an integer)."""
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int | float):
        return None
    return max(round(duration_ms), 0)


def typed_ports(outputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{port: value}`` -> ``{port: typed value}``."""
    return {str(port): encode(value) for port, value in (outputs or {}).items()}


def _error_message(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("message", ""))
    return str(error)


def _workflow_started(event: Event) -> dict[str, Any]:
    return {"type": "WorkflowStarted", "attempt": event.data.get("attempt", 1)}


def _workflow_completed(event: Event) -> dict[str, Any]:
    status = event.data.get("status")
    body: dict[str, Any] = {
        "type": "WorkflowCompleted",
        "success": status == "succeeded",
        "duration_ms": millis(event.data.get("duration_ms")) or 0,
        "status": status,
    }
    error = _error_message(event.data.get("error"))
    if error is not None:
        body["error"] = error
    return body


def _status_changed(event: Event) -> dict[str, Any]:
    return {
        "type": "ExecutionStatusChanged",
        "status": event.data.get("status"),
        "previous": event.data.get("previous"),
    }


def _node_started(event: Event) -> dict[str, Any]:
    return {
        "type": "NodeStarted",
        "node_id": event.node_id,
        "node_type": event.data.get("node_type"),
        "attempt": event.data.get("attempt", 1),
    }


def _node_finished(event: Event) -> dict[str, Any] | None:
    status = event.data.get("status")
    if status == "succeeded":
        return {
            "type": "NodeCompleted",
            "node_id": event.node_id,
            "outputs": typed_ports(event.data.get("outputs")),
            "duration_ms": millis(event.data.get("duration_ms")) or 0,
        }
    if status == "failed":
        return None  # already sent as NodeFailed
    return {"type": "NodeSkipped", "node_id": event.node_id, "status": status}


def _node_failed(event: Event) -> dict[str, Any]:
    return {
        "type": "NodeFailed",
        "node_id": event.node_id,
        "error": _error_message(event.data.get("error")) or "failed",
        "node_type": event.data.get("node_type"),
        "attempt": event.data.get("attempt", 1),
        "will_retry": bool(event.data.get("will_retry", False)),
    }


def _node_event(event: Event) -> dict[str, Any]:
    data = event.data
    kind = data.get("kind")
    message = str(data.get("message") or "")
    inner: dict[str, Any]
    if kind == "progress":
        inner = {"event_type": "Progress", "percent": data.get("percent")}
        if message:
            inner["message"] = message
    elif kind == "data":
        inner = {
            "event_type": "Data",
            "port": data.get("port"),
            "value": encode(data.get("value")),
        }
    elif kind == "warning" or (kind == "log" and data.get("level") in {"warning", "error"}):
        inner = {"event_type": "Warning", "message": message}
    else:  # info, log and anything newer
        inner = {"event_type": "Info", "message": message}
    return {"type": "NodeEvent", "node_id": event.node_id, "event": inner}


def _popup(event: Event) -> dict[str, Any]:
    title = event.data.get("title")
    content = to_json(event.data.get("content"))
    text = content if isinstance(content, str) else dumps(content).decode()
    message = f"{title}: {text}" if title else text
    return {
        "type": "NodeEvent",
        "node_id": event.node_id,
        "event": {"event_type": "Info", "message": message},
    }


def _approval_requested(event: Event) -> dict[str, Any]:
    return {
        "type": "ApprovalRequested",
        "node_id": event.node_id,
        "message": event.data.get("message", ""),
    }


def _approval_resolved(event: Event) -> dict[str, Any]:
    return {
        "type": "ApprovalResolved",
        "node_id": event.node_id,
        "approved": bool(event.data.get("approved")),
        "by": event.data.get("by"),
        "comment": event.data.get("comment"),
    }


_RENDERERS: Final[Mapping[EventType, Callable[[Event], dict[str, Any] | None]]] = {
    EventType.EXECUTION_STARTED: _workflow_started,
    EventType.EXECUTION_FINISHED: _workflow_completed,
    EventType.EXECUTION_STATUS: _status_changed,
    EventType.NODE_STARTED: _node_started,
    EventType.NODE_FINISHED: _node_finished,
    EventType.NODE_FAILED: _node_failed,
    EventType.NODE_EVENT: _node_event,
    EventType.DEBUG_POPUP: _popup,
    EventType.APPROVAL_REQUESTED: _approval_requested,
    EventType.APPROVAL_RESOLVED: _approval_resolved,
}


def render_event(event: Event) -> dict[str, Any] | None:
    """The Flow Engine wire form of ``event``, or None for events this dialect does not send."""
    renderer = _RENDERERS.get(event.type)
    if renderer is None:
        return None
    body = renderer(event)
    if body is None:
        return None
    body["execution_id"] = event.execution_id
    body["workflow_id"] = event.workflow_id
    body["seq"] = event.seq
    body["timestamp"] = rfc3339(event.timestamp)
    return body


def _frame(event: Event) -> str | None:
    body = render_event(event)
    return None if body is None else dumps(body).decode()


def encode_event(event: Event, cache: EncodeCache | None = None) -> str | None:
    """The text frame of ``event`` (None: not sent), encoded once per event with ``cache``."""
    if cache is None:
        return _frame(event)
    return cache.encode(event, FORMAT_NAME, _frame)


def lagged_message(missed: int, execution_ids: frozenset[str]) -> str:
    """What a socket sends when its client fell behind and ``missed`` events were lost."""
    return dumps(
        {
            "type": "Lagged",
            "missed": missed,
            "execution_ids": sorted(execution_ids),
            "timestamp": rfc3339(time.time()),
        }
    ).decode()
