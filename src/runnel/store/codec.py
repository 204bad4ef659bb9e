"""Model values to JSON-able dicts and JSON text, and back, exactly.

Two layers:

- ``*_to_dict`` / ``*_from_dict`` turn the model's frozen dataclasses into plain dicts of
  JSON types and back. Runtime values inside them (node inputs and outputs, event data,
  configs) are left as they are, ``bytes`` included.
- ``dumps`` / ``loads`` turn such a dict into JSON text and back with orjson. ``bytes``
  become ``{"$bytes": "<base64>"}``; a user's own one-key dict whose key is one of our tags
  is wrapped in ``{"$dict": {...}}`` so it cannot be mistaken for one. Tuples come back as
  lists and non-finite floats as ``null``, as in any JSON.

Decoding accepts dicts with keys missing (the dataclass default is used), so that rows
written before a field was added still load.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import orjson

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
    DEFAULT_PORT,
    Edge,
    Node,
    OnError,
    Position,
    RetryPolicy,
    SaveHistory,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowOnError,
    WorkflowOnErrorKind,
    WorkflowSettings,
)

__all__ = [
    "decision_from_dict",
    "decision_to_dict",
    "dumps",
    "dumps_or_none",
    "event_from_dict",
    "event_to_dict",
    "execution_from_dict",
    "execution_to_dict",
    "loads",
    "loads_or_none",
    "node_error_from_dict",
    "node_error_to_dict",
    "node_run_from_dict",
    "node_run_to_dict",
    "workflow_from_dict",
    "workflow_to_dict",
]

_BYTES: Final = "$bytes"
_DICT: Final = "$dict"
_TAGS: Final = frozenset({_BYTES, _DICT})
# orjson writes compact JSON, so a dict whose first key starts with "$" shows as these bytes;
# inside a JSON string the quote would be escaped. Without them the text needs no tag walk.
_TAG_MARK: Final = b'{"$'
_TAG_MARK_TEXT: Final = _TAG_MARK.decode()

_T = TypeVar("_T")


# -- JSON text -------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Any runtime value -> JSON text; ``bytes`` are kept (see the module docstring)."""
    try:
        raw = orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError:
        # Non-string dict keys (written as strings, like json.dumps does); anything else
        # unstorable fails again below with orjson's message.
        raw = orjson.dumps(_tag(value), default=_default, option=orjson.OPT_NON_STR_KEYS)
    else:
        # "$" alone is a memchr, far cheaper than the three-byte search it usually spares.
        if b"$" not in raw or _TAG_MARK not in raw:
            return raw.decode()
    # Rare: bytes, or a user dict that looks like a tag. Walk once and tag explicitly.
    return orjson.dumps(_tag(value), default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def dumps_or_none(value: Any) -> str | None:
    """Like ``dumps``, but ``None`` stays ``None`` (SQL NULL rather than JSON ``null``)."""
    return None if value is None else dumps(value)


def loads(text: str | bytes) -> Any:
    """JSON text written by ``dumps`` -> the value it was made from."""
    value = orjson.loads(text)
    if isinstance(text, bytes):
        tagged = b"$" in text and _TAG_MARK in text
    else:
        tagged = "$" in text and _TAG_MARK_TEXT in text
    return _untag(value) if tagged else value


def loads_or_none(text: str | bytes | None) -> Any:
    """Like ``loads``, but SQL NULL (``None``) stays ``None``."""
    return None if text is None else loads(text)


def _default(value: Any) -> Any:
    # orjson calls this only for types it does not know.
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _tag(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        out = {key: _tag(item) for key, item in value.items()}
        if len(out) == 1 and next(iter(out)) in _TAGS:
            return {_DICT: out}
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_tag(item) for item in value]
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            key, item = next(iter(value.items()))
            if key == _BYTES and isinstance(item, str):
                return base64.b64decode(item)
            if key == _DICT and isinstance(item, dict):
                return {k: _untag(v) for k, v in item.items()}
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(item) for item in value]
    return value


# -- small values ----------------------------------------------------------------------


def node_error_to_dict(error: NodeError) -> dict[str, Any]:
    return {"message": error.message, "kind": error.kind, "details": dict(error.details)}


def node_error_from_dict(data: Mapping[str, Any]) -> NodeError:
    return NodeError(
        message=data["message"],
        kind=data.get("kind", "node"),
        details=data.get("details") or {},
    )


def decision_to_dict(decision: ApprovalDecision) -> dict[str, Any]:
    return {
        "approved": decision.approved,
        "by": decision.by,
        "comment": decision.comment,
        "at": decision.at,
    }


def decision_from_dict(data: Mapping[str, Any]) -> ApprovalDecision:
    return ApprovalDecision(
        approved=data["approved"],
        by=data.get("by"),
        comment=data.get("comment"),
        at=data.get("at"),
    )


def _maybe(value: _T | None, convert: Any) -> Any:
    return None if value is None else convert(value)


# -- workflow --------------------------------------------------------------------------


def _retry_to_dict(retry: RetryPolicy) -> dict[str, Any]:
    return {
        "max_attempts": retry.max_attempts,
        "delay_ms": retry.delay_ms,
        "backoff_multiplier": retry.backoff_multiplier,
        "max_delay_ms": retry.max_delay_ms,
        "jitter": retry.jitter,
    }


def _retry_from_dict(data: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(**_known(data, _RETRY_FIELDS))


_RETRY_FIELDS: Final = ("max_attempts", "delay_ms", "backoff_multiplier", "max_delay_ms", "jitter")


def _node_to_dict(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "type": node.type,
        "name": node.name,
        "config": node.config,
        "position": _maybe(node.position, lambda p: {"x": p.x, "y": p.y}),
        "retry": _maybe(node.retry, _retry_to_dict),
        "timeout_ms": node.timeout_ms,
        "on_error": node.on_error.value,
        "needs_approval": node.needs_approval,
        "filters": node.filters,
        "extra": node.extra,
    }


def _node_from_dict(data: Mapping[str, Any]) -> Node:
    position = data.get("position")
    return Node(
        id=data["id"],
        type=data["type"],
        name=data.get("name"),
        config=data.get("config") or {},
        position=None if position is None else Position(**_known(position, ("x", "y"))),
        retry=_maybe(data.get("retry"), _retry_from_dict),
        timeout_ms=data.get("timeout_ms"),
        on_error=OnError(data.get("on_error", OnError.STOP)),
        needs_approval=data.get("needs_approval", False),
        filters=data.get("filters"),
        extra=data.get("extra") or {},
    )


def _edge_to_dict(edge: Edge) -> dict[str, Any]:
    return {
        "id": edge.id,
        "source": edge.source,
        "source_port": edge.source_port,
        "target": edge.target,
        "target_port": edge.target_port,
        "extra": edge.extra,
    }


def _edge_from_dict(data: Mapping[str, Any]) -> Edge:
    return Edge(
        id=data["id"],
        source=data["source"],
        target=data["target"],
        source_port=data.get("source_port", DEFAULT_PORT),
        target_port=data.get("target_port", DEFAULT_PORT),
        extra=data.get("extra") or {},
    )


def _trigger_to_dict(trigger: Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "kind": trigger.kind.value,
        "config": trigger.config,
        "enabled": trigger.enabled,
    }


def _trigger_from_dict(data: Mapping[str, Any]) -> Trigger:
    return Trigger(
        id=data["id"],
        kind=TriggerKind(data.get("kind", TriggerKind.MANUAL)),
        config=data.get("config") or {},
        enabled=data.get("enabled", True),
    )


def _settings_to_dict(settings: WorkflowSettings) -> dict[str, Any]:
    return {
        "max_parallel_nodes": settings.max_parallel_nodes,
        "on_error": {
            "kind": settings.on_error.kind.value,
            "max_attempts": settings.on_error.max_attempts,
        },
        "max_execution_time_ms": settings.max_execution_time_ms,
        "save_history": settings.save_history.value,
        "extra": settings.extra,
    }


def _settings_from_dict(data: Mapping[str, Any]) -> WorkflowSettings:
    defaults = WorkflowSettings()
    on_error = data.get("on_error")
    return WorkflowSettings(
        max_parallel_nodes=data.get("max_parallel_nodes", defaults.max_parallel_nodes),
        on_error=(
            defaults.on_error
            if on_error is None
            else WorkflowOnError(
                kind=WorkflowOnErrorKind(on_error.get("kind", WorkflowOnErrorKind.STOP)),
                max_attempts=on_error.get("max_attempts", 1),
            )
        ),
        max_execution_time_ms=data.get("max_execution_time_ms"),
        save_history=SaveHistory(data.get("save_history", SaveHistory.ALL)),
        extra=data.get("extra") or {},
    )


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """Every field of ``workflow``, defaults included, so a stored version never changes
    meaning when a default does."""
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "nodes": [_node_to_dict(node) for node in workflow.nodes],
        "edges": [_edge_to_dict(edge) for edge in workflow.edges],
        "triggers": [_trigger_to_dict(trigger) for trigger in workflow.triggers],
        "settings": _settings_to_dict(workflow.settings),
        "owner": workflow.owner,
        "group": workflow.group,
        "version": workflow.version,
        "extra": workflow.extra,
    }


def workflow_from_dict(data: Mapping[str, Any]) -> Workflow:
    """Inverse of ``workflow_to_dict``."""
    settings = data.get("settings")
    return Workflow(
        id=data["id"],
        name=data.get("name", ""),
        description=data.get("description", ""),
        nodes=tuple(_node_from_dict(node) for node in data.get("nodes", ())),
        edges=tuple(_edge_from_dict(edge) for edge in data.get("edges", ())),
        triggers=tuple(_trigger_from_dict(trigger) for trigger in data.get("triggers", ())),
        settings=WorkflowSettings() if settings is None else _settings_from_dict(settings),
        owner=data.get("owner"),
        group=data.get("group"),
        version=data.get("version", 0),
        extra=data.get("extra") or {},
    )


# -- runs and events -------------------------------------------------------------------


def node_run_to_dict(run: NodeRun) -> dict[str, Any]:
    return {
        "execution_id": run.execution_id,
        "node_id": run.node_id,
        "status": run.status.value,
        "attempt": run.attempt,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "error": _maybe(run.error, node_error_to_dict),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "wait": run.wait,
        "decision": _maybe(run.decision, decision_to_dict),
    }


def node_run_from_dict(data: Mapping[str, Any]) -> NodeRun:
    return NodeRun(
        execution_id=data["execution_id"],
        node_id=data["node_id"],
        status=NodeStatus(data["status"]),
        attempt=data.get("attempt", 0),
        inputs=data.get("inputs"),
        outputs=data.get("outputs"),
        error=_maybe(data.get("error"), node_error_from_dict),
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        wait=data.get("wait"),
        decision=_maybe(data.get("decision"), decision_from_dict),
    )


def event_to_dict(event: Event) -> dict[str, Any]:
    return {
        "execution_id": event.execution_id,
        "seq": event.seq,
        "type": event.type.value,
        "timestamp": event.timestamp,
        "workflow_id": event.workflow_id,
        "node_id": event.node_id,
        "data": event.data,
    }


def event_from_dict(data: Mapping[str, Any]) -> Event:
    return Event(
        execution_id=data["execution_id"],
        seq=data["seq"],
        type=EventType(data["type"]),
        timestamp=data["timestamp"],
        workflow_id=data.get("workflow_id", ""),
        node_id=data.get("node_id"),
        data=data.get("data") or {},
    )


def execution_to_dict(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "workflow_id": execution.workflow_id,
        "workflow_version": execution.workflow_version,
        "status": execution.status.value,
        "mode": execution.mode.value,
        "inputs": execution.inputs,
        "outputs": execution.outputs,
        "error": _maybe(execution.error, node_error_to_dict),
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "parent_id": execution.parent_id,
        "trigger": execution.trigger,
        "attempt": execution.attempt,
    }


def execution_from_dict(data: Mapping[str, Any]) -> Execution:
    return Execution(
        id=data["id"],
        workflow_id=data["workflow_id"],
        workflow_version=data["workflow_version"],
        status=ExecutionStatus(data.get("status", ExecutionStatus.QUEUED)),
        mode=ExecutionMode(data.get("mode", ExecutionMode.EXECUTE)),
        inputs=data.get("inputs") or {},
        outputs=data.get("outputs"),
        error=_maybe(data.get("error"), node_error_from_dict),
        created_at=data.get("created_at"),
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        parent_id=data.get("parent_id"),
        trigger=data.get("trigger", "manual"),
        attempt=data.get("attempt", 1),
    )


def _known(data: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in names if name in data}
