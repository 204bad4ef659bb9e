"""The Flow Engine workflow format (seed 004) to and from the canonical model, losslessly.

Wire shape::

    {"id", "name", "description",
     "nodes": [{"id", "node_type", "name"?, "config": {key: typed value | plain JSON},
                "position"?: {"x", "y"},
                "retry_policy"?: {"max_attempts", "delay_ms", "backoff_multiplier",
                                  "max_delay_ms"?, "jitter"?},
                "timeout_ms"?, "on_error"?: "stop"|"continue"|"skip", "needs_approval"?,
                "filters"?}],
     "connections": [{"from_node", "from_port", "to_node", "to_port", "id"?}],
     "triggers": [{"id", "trigger_type": {"type": "Manual"|"Cron"|"Webhook"|"Event", ...},
                   "enabled"}],
     "settings": {"max_parallel_nodes", "on_error": "StopWorkflow" | "ContinueOnError" |
                  {"RetryWorkflow": {"max_attempts"}}, "max_execution_time_ms"?,
                  "save_history"?}}

``timeout_ms``, ``on_error``, ``needs_approval``, ``filters``, ``jitter``, ``save_history`` and
a connection ``id`` are runnel extensions.

Lossless: each wire object is kept, as it came, in the ``extra["flowengine"]`` of its canonical
counterpart (the workflow keeps its top-level keys and its triggers). Going back, every field
whose canonical value still equals what its original wire value decodes to is written exactly
as it came (typed or plain config values, ``100`` vs ``100.0``, ``null`` vs absent, unknown
keys); a field changed since (through another dialect, say) is encoded afresh from the
canonical value. So ``workflow_to_flowengine(workflow_from_flowengine(x)) == x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from runnel.model.values import TypedValueError, decode, encode, is_typed
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
    "EXTRA_KEY",
    "FlowEngineFormatError",
    "generated_edge_id",
    "summary_to_flowengine",
    "workflow_from_flowengine",
    "workflow_to_flowengine",
]

#: The key under which each canonical object keeps its original Flow Engine form.
EXTRA_KEY: Final = "flowengine"

_LISTS: Final = ("nodes", "connections", "triggers")
_TRIGGER_KINDS: Final = {
    "Manual": (TriggerKind.MANUAL, None),
    "Cron": (TriggerKind.CRON, "expression"),
    "Webhook": (TriggerKind.WEBHOOK, "path"),
    "Event": (TriggerKind.EVENT, "event_type"),
}
_TRIGGER_NAMES: Final = {kind: name for name, (kind, _) in _TRIGGER_KINDS.items()}
_SIMPLE_ON_ERROR: Final = {
    "StopWorkflow": WorkflowOnErrorKind.STOP,
    "ContinueOnError": WorkflowOnErrorKind.CONTINUE,
}


class FlowEngineFormatError(ValueError):
    """A Flow Engine document of the wrong shape; ``path`` says where (``nodes[0].id``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class _Absent:
    """A key that is not in a wire object."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()
#: What an encoder returns to leave its key out.
_OMIT: Final = _Absent()


# --------------------------------------------------------------------------------------------
# Wire -> canonical


def workflow_from_flowengine(data: Mapping[str, Any]) -> Workflow:
    """A Flow Engine workflow document -> the canonical workflow.

    Raises FlowEngineFormatError, naming the path, for any shape it cannot read.
    """
    if not isinstance(data, Mapping):
        raise FlowEngineFormatError("", f"a workflow must be a JSON object, got {_kind(data)}")
    workflow_id = _read_id(data.get("id", _ABSENT), "id")
    name = _read_text(data.get("name", _ABSENT), "name")
    description = _read_text(data.get("description", _ABSENT), "description")
    raw_nodes = _read_list(data.get("nodes", _ABSENT), "nodes")
    raw_edges = _read_list(data.get("connections", _ABSENT), "connections")
    raw_triggers = _read_list(data.get("triggers", _ABSENT), "triggers")
    nodes = tuple(_node_from_wire(item, f"nodes[{i}]") for i, item in enumerate(raw_nodes))
    edges = _edges_from_wire(raw_edges)
    triggers = tuple(
        _trigger_from_wire(item, f"triggers[{i}]") for i, item in enumerate(raw_triggers)
    )
    raw_settings = data.get("settings")
    if raw_settings is None:
        settings = WorkflowSettings()
    else:
        wire_settings = _object(raw_settings, "settings")
        settings = WorkflowSettings(
            extra={EXTRA_KEY: _copy(wire_settings)}, **_SettingsFields.decode(wire_settings)
        )
    # The top level without its lists, which live on as the nodes, edges and triggers: an
    # empty list keeps each one's place (a null stays null).
    top = {
        key: ([] if key in _LISTS and value is not None else _copy(value))
        for key, value in data.items()
    }
    extra = {EXTRA_KEY: {"workflow": top, "triggers": [_copy(item) for item in raw_triggers]}}
    return Workflow(
        id=workflow_id,
        name=name,
        description=description,
        nodes=nodes,
        edges=edges,
        triggers=triggers,
        settings=settings,
        extra=extra,
    )


def _node_from_wire(data: Any, path: str) -> Node:
    node = _object(data, path)
    return Node(extra={EXTRA_KEY: _copy(node)}, **_NodeFields.decode(node, path))


_EDGE_READERS: Final[Mapping[str, Callable[[Any, str], Any]]] = {
    "from_node": lambda wire, path: _read_id(wire, path),
    "from_port": lambda wire, path: _read_port(wire, path),
    "to_node": lambda wire, path: _read_id(wire, path),
    "to_port": lambda wire, path: _read_port(wire, path),
    "id": lambda wire, path: _read_name(wire, path),
}


def _edges_from_wire(items: Sequence[Any]) -> tuple[Edge, ...]:
    parsed: list[tuple[Mapping[str, Any], dict[str, Any]]] = []
    for index, item in enumerate(items):
        path = f"connections[{index}]"
        wire = _object(item, path)
        values = {
            key: read(wire.get(key, _ABSENT), f"{path}.{key}")
            for key, read in _EDGE_READERS.items()
        }
        parsed.append((wire, values))
    taken = {values["id"] for _, values in parsed if values["id"] is not None}
    edges: list[Edge] = []
    for wire, values in parsed:
        edge_id = values["id"]
        if edge_id is None:
            edge_id = generated_edge_id(
                values["from_node"],
                values["from_port"],
                values["to_node"],
                values["to_port"],
                taken,
            )
            taken.add(edge_id)
        edges.append(
            Edge(
                id=edge_id,
                source=values["from_node"],
                target=values["to_node"],
                source_port=values["from_port"],
                target_port=values["to_port"],
                extra={EXTRA_KEY: _copy(wire)},
            )
        )
    return tuple(edges)


def generated_edge_id(
    source: str, source_port: str, target: str, target_port: str, taken: set[str]
) -> str:
    """The id of a connection that has none: from its endpoints, so that it stays the same
    when other connections are added, removed or reordered (``#2``... for repeats)."""
    base = f"{source}.{source_port}->{target}.{target_port}"
    candidate = base
    count = 1
    while candidate in taken:
        count += 1
        candidate = f"{base}#{count}"
    return candidate


def _read_trigger_type(wire: Any, path: str) -> tuple[TriggerKind, dict[str, Any]]:
    if wire is _ABSENT:
        raise FlowEngineFormatError(path, 'missing (e.g. {"type": "Manual"})')
    data = _object(wire, path)
    name = _read_id(data.get("type", _ABSENT), f"{path}.type")
    if name not in _TRIGGER_KINDS:
        raise FlowEngineFormatError(
            f"{path}.type", f"unknown trigger type {name!r}; expected {_choices(_TRIGGER_KINDS)}"
        )
    kind, needed = _TRIGGER_KINDS[name]
    if needed is not None:
        _read_id(data.get(needed, _ABSENT), f"{path}.{needed}")
    return kind, {key: _copy(value) for key, value in data.items() if key != "type"}


_TRIGGER_READERS: Final[Mapping[str, Callable[[Any, str], Any]]] = {
    "id": lambda wire, path: _read_id(wire, path),
    "trigger_type": _read_trigger_type,
    "enabled": lambda wire, path: _read_flag(True)(wire, path),
}


def _trigger_from_wire(data: Any, path: str) -> Trigger:
    wire = _object(data, path)
    values = {
        key: read(wire.get(key, _ABSENT), f"{path}.{key}") for key, read in _TRIGGER_READERS.items()
    }
    kind, config = values["trigger_type"]
    return Trigger(id=values["id"], kind=kind, config=config, enabled=values["enabled"])


# --------------------------------------------------------------------------------------------
# Canonical -> wire


def workflow_to_flowengine(workflow: Workflow) -> dict[str, Any]:
    """The canonical workflow -> a Flow Engine document (the original one, if unchanged)."""
    saved = workflow.extra.get(EXTRA_KEY)
    saved = saved if isinstance(saved, Mapping) else {}
    top = saved.get("workflow")
    original = top if isinstance(top, Mapping) else None
    saved_triggers = saved.get("triggers")
    settings = workflow.settings
    fields: dict[str, _Field] = {
        "id": _field(workflow.id, _read_id, _as_is),
        "name": _field(workflow.name, _read_text, _as_is),
        "description": _field(workflow.description, _read_text, _as_is),
        "nodes": _Field(
            [_NodeFields.encode(node, _original(node.extra)) for node in workflow.nodes],
            _unless_null,
            _as_is,
        ),
        "connections": _Field(_edges_to_wire(workflow.edges), _unless_null, _as_is),
        "triggers": _Field(
            _triggers_to_wire(
                workflow.triggers, saved_triggers if isinstance(saved_triggers, list) else []
            ),
            _unless_null,
            _as_is,
        ),
        "settings": _Field(
            _SettingsFields.values(settings),
            lambda wire: _SettingsFields.decode(
                {} if wire is _ABSENT or wire is None else _object(wire, "settings")
            ),
            lambda value, wire: _SettingsFields.encode(settings, _original(settings.extra)),
        ),
    }
    return _assemble(original, fields)


def summary_to_flowengine(workflow: Workflow) -> dict[str, Any]:
    """The list-endpoint entry: ``{id, name, description, nodes, connections}`` (counts)."""
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "nodes": len(workflow.nodes),
        "connections": len(workflow.edges),
    }


def _edges_to_wire(edges: Sequence[Edge]) -> list[dict[str, Any]]:
    taken = {edge.id for edge in edges if not _implicit_id(edge)}
    out: list[dict[str, Any]] = []
    for edge in edges:
        original = _original(edge.extra)
        values: dict[str, str | None] = {
            "from_node": edge.source,
            "from_port": edge.source_port,
            "to_node": edge.target,
            "to_port": edge.target_port,
            "id": edge.id,
        }
        if _implicit_id(edge):
            # It came without an id: it goes without one while its id is still the one its
            # endpoints give.
            generated = generated_edge_id(
                edge.source, edge.source_port, edge.target, edge.target_port, taken
            )
            taken.add(generated)
            if edge.id == generated:
                values["id"] = None
        fields = {
            key: _field(value, read, _omit_none if key == "id" else _as_is)
            for key, read in _EDGE_READERS.items()
            for value in (values[key],)
        }
        out.append(_assemble(original, fields))
    return out


def _implicit_id(edge: Edge) -> bool:
    original = _original(edge.extra)
    return original is not None and original.get("id") is None


def _triggers_to_wire(triggers: Sequence[Trigger], saved: list[Any]) -> list[dict[str, Any]]:
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for item in saved:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            by_id.setdefault(item["id"], []).append(item)
    out: list[dict[str, Any]] = []
    for trigger in triggers:
        candidates = by_id.get(trigger.id)
        original = candidates.pop(0) if candidates else None
        values = {
            "id": trigger.id,
            "trigger_type": (trigger.kind, dict(trigger.config)),
            "enabled": trigger.enabled,
        }
        encoders: dict[str, Callable[[Any, Any], Any]] = {
            "id": _as_is,
            "trigger_type": _encode_trigger_type,
            "enabled": _as_is,
        }
        fields = {
            key: _field(values[key], read, encoders[key]) for key, read in _TRIGGER_READERS.items()
        }
        out.append(_assemble(original, fields))
    return out


def _encode_trigger_type(value: tuple[TriggerKind, Mapping[str, Any]], wire: Any) -> Any:
    kind, config = value
    return {"type": _TRIGGER_NAMES[kind], **_copy(dict(config))}


# --------------------------------------------------------------------------------------------
# The lossless merge


@dataclass(frozen=True, slots=True)
class _Field:
    """One known key: its canonical value, how the wire reads, how to write it afresh."""

    value: Any
    #: Wire value (or ``_ABSENT``) -> canonical value; may raise on a corrupt original.
    decode: Callable[[Any], Any]
    #: (canonical value, original wire value or ``_ABSENT``) -> wire value or ``_OMIT``.
    encode: Callable[[Any, Any], Any]


def _assemble(original: Mapping[str, Any] | None, fields: Mapping[str, _Field]) -> dict[str, Any]:
    """A wire object from ``fields``, reusing ``original``'s form wherever it still holds."""
    out: dict[str, Any] = {}
    if original is not None:
        for key, wire in original.items():
            field = fields.get(key)
            if field is None:
                out[key] = _copy(wire)  # unknown to runnel: kept as it came
            elif _still(field, wire):
                out[key] = _copy(wire)
            else:
                fresh = field.encode(field.value, wire)
                if fresh is not _OMIT:
                    out[key] = fresh
    for key, field in fields.items():
        if original is not None and key in original:
            continue
        if original is not None and _still(field, _ABSENT):
            continue  # absent then, and still what absence means
        fresh = field.encode(field.value, _ABSENT)
        if fresh is not _OMIT:
            out[key] = fresh
    return out


def _still(field: _Field, wire: Any) -> bool:
    try:
        decoded = field.decode(wire)
    except (FlowEngineFormatError, TypedValueError):
        return False  # a corrupt original is written afresh
    return _same(decoded, field.value)


def _same(left: Any, right: Any) -> bool:
    """Equal, and of the same JSON kind all the way down (``1`` is not ``True`` nor ``1.0``)."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


def _original(extra: Mapping[str, Any]) -> Mapping[str, Any] | None:
    saved = extra.get(EXTRA_KEY)
    return saved if isinstance(saved, Mapping) else None


def _as_is(value: Any, wire: Any) -> Any:
    return _copy(value)


def _field(
    value: Any, read: Callable[[Any, str], Any], encode: Callable[[Any, Any], Any]
) -> _Field:
    """A field whose originals are read by ``read`` (the same reader a document goes through)."""
    return _Field(value, lambda wire: read(wire, ""), encode)


_NEVER: Final = object()


def _unless_null(wire: Any) -> Any:
    # The top level keeps no copy of its lists: a list is always written afresh, while an
    # absent or null one stays so as long as the canonical one is empty.
    return [] if wire is _ABSENT or wire is None else _NEVER


def _read_list(wire: Any, path: str) -> list[Any]:
    return [] if wire is _ABSENT or wire is None else _array(wire, path)


# --------------------------------------------------------------------------------------------
# Nodes and settings field by field (one table each way, so that they cannot drift apart)


def _read_id(wire: Any, path: str) -> str:
    if wire is _ABSENT:
        raise FlowEngineFormatError(path, "missing (a string is required)")
    return _string(wire, path)


def _read_text(wire: Any, path: str) -> str:
    return "" if wire is _ABSENT or wire is None else _string(wire, path)


def _read_name(wire: Any, path: str) -> str | None:
    return None if wire is _ABSENT or wire is None else _string(wire, path)


def _read_port(wire: Any, path: str) -> str:
    return DEFAULT_PORT if wire is _ABSENT or wire is None else _string(wire, path)


def _read_optional_int(wire: Any, path: str) -> int | None:
    return None if wire is _ABSENT or wire is None else _integer(wire, path)


def _read_flag(default: bool) -> Callable[[Any, str], bool]:
    def read(wire: Any, path: str) -> bool:
        return default if wire is _ABSENT or wire is None else _bool(wire, path)

    return read


def _read_json(wire: Any, path: str) -> Any:
    return None if wire is _ABSENT else _copy(wire)


class _NodeFields:
    #: wire key -> (Node attribute, reader). The readers serve both directions: reading a
    #: document, and telling whether an original wire value still says the same.
    READERS: Final[Mapping[str, tuple[str, Callable[[Any, str], Any]]]] = {
        "id": ("id", _read_id),
        "node_type": ("type", _read_id),
        "name": ("name", _read_name),
        "config": ("config", lambda wire, path: _decode_config(wire, path)),
        "position": ("position", lambda wire, path: _decode_position(wire, path)),
        "retry_policy": ("retry", lambda wire, path: _decode_retry(wire, path)),
        "timeout_ms": ("timeout_ms", _read_optional_int),
        "on_error": ("on_error", lambda wire, path: _decode_on_error(wire, path)),
        "needs_approval": ("needs_approval", _read_flag(False)),
        "filters": ("filters", _read_json),
    }

    @classmethod
    def decode(cls, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        return {
            attr: read(node.get(key, _ABSENT), f"{path}.{key}")
            for key, (attr, read) in cls.READERS.items()
        }

    @classmethod
    def encode(cls, node: Node, original: Mapping[str, Any] | None) -> dict[str, Any]:
        original_config = original.get("config") if original is not None else None

        def encode_config(value: Mapping[str, Any], wire: Any) -> Any:
            return _encode_config(value, original_config)

        encoders: dict[str, Callable[[Any, Any], Any]] = {
            "id": _as_is,
            "node_type": _as_is,
            "name": _omit_none,
            "config": encode_config,
            "position": _encode_position,
            "retry_policy": _encode_retry,
            "timeout_ms": _omit_none,
            "on_error": _encode_node_on_error,
            "needs_approval": lambda value, wire: value if value else _OMIT,
            "filters": _omit_none,
        }
        fields = {
            key: _field(
                dict(node.config) if attr == "config" else getattr(node, attr),
                read,
                encoders[key],
            )
            for key, (attr, read) in cls.READERS.items()
        }
        return _assemble(original, fields)


def _omit_none(value: Any, wire: Any) -> Any:
    return _OMIT if value is None else _copy(value)


def _decode_config(wire: Any, path: str) -> dict[str, Any]:
    if wire is _ABSENT or wire is None:
        return {}
    config = _object(wire, path)
    out: dict[str, Any] = {}
    for key, value in config.items():
        try:
            # Plain JSON comes back as the same object: copy, so the caller's data is not shared.
            out[key] = _copy(decode(value, f"{path}.{key}"))
        except TypedValueError as exc:
            raise FlowEngineFormatError(exc.path, exc.message) from None
    return out


def _encode_config(config: Mapping[str, Any], original: Any) -> dict[str, Any]:
    """Key by key: the original form while the value is unchanged, else typed (or plain when
    the original was plain and the new value reads back the same way)."""
    saved = original if isinstance(original, Mapping) else {}
    out: dict[str, Any] = {}
    for key in [*(k for k in saved if k in config), *(k for k in config if k not in saved)]:
        value = config[key]
        if key in saved:
            wire = saved[key]
            try:
                unchanged = _same(decode(wire), value)
            except TypedValueError:
                unchanged = False
            if unchanged:
                out[key] = _copy(wire)
                continue
            if not is_typed(wire) and _plain_reads_back(value):
                out[key] = _copy(value)
                continue
        out[key] = encode(value)
    return out


def _plain_reads_back(value: Any) -> bool:
    """Whether plain JSON of ``value`` decodes to ``value`` (no bytes, no typed look-alike)."""
    if is_typed(value):
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, bool | int | str):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, Mapping):
            if not all(isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            return False
    return True


def _decode_position(wire: Any, path: str) -> Position | None:
    if wire is _ABSENT or wire is None:
        return None
    data = _object(wire, path)
    x = _optional(data, "x", path, _number)
    y = _optional(data, "y", path, _number)
    return Position(x=float(x or 0), y=float(y or 0))


def _encode_position(value: Position | None, wire: Any) -> Any:
    if value is None:
        return _OMIT
    fresh = {"x": _tidy_number(value.x), "y": _tidy_number(value.y)}
    return _keep_unknown(wire, fresh, ("x", "y"))


def _decode_retry(wire: Any, path: str) -> RetryPolicy | None:
    if wire is _ABSENT or wire is None:
        return None
    data = _object(wire, path)
    defaults = RetryPolicy()
    max_attempts = _optional(data, "max_attempts", path, _integer)
    delay_ms = _optional(data, "delay_ms", path, _integer)
    backoff = _optional(data, "backoff_multiplier", path, _number)
    jitter = _optional(data, "jitter", path, _number)
    return RetryPolicy(
        max_attempts=defaults.max_attempts if max_attempts is None else max_attempts,
        delay_ms=defaults.delay_ms if delay_ms is None else delay_ms,
        backoff_multiplier=defaults.backoff_multiplier if backoff is None else float(backoff),
        max_delay_ms=_optional(data, "max_delay_ms", path, _integer),
        jitter=defaults.jitter if jitter is None else float(jitter),
    )


_RETRY_KEYS: Final = ("max_attempts", "delay_ms", "backoff_multiplier", "max_delay_ms", "jitter")


def _encode_retry(value: RetryPolicy | None, wire: Any) -> Any:
    if value is None:
        return _OMIT
    fresh: dict[str, Any] = {
        "max_attempts": value.max_attempts,
        "delay_ms": value.delay_ms,
        "backoff_multiplier": _tidy_number(value.backoff_multiplier),
    }
    if value.max_delay_ms is not None:
        fresh["max_delay_ms"] = value.max_delay_ms
    if value.jitter:
        fresh["jitter"] = value.jitter
    return _keep_unknown(wire, fresh, _RETRY_KEYS)


def _decode_on_error(wire: Any, path: str) -> OnError:
    if wire is _ABSENT or wire is None:
        return OnError.STOP
    name = _string(wire, path)
    try:
        return OnError(name)
    except ValueError:
        raise FlowEngineFormatError(
            path, f"unknown on_error {name!r}; expected {_choices([e.value for e in OnError])}"
        ) from None


def _encode_node_on_error(value: OnError, wire: Any) -> Any:
    return _OMIT if value is OnError.STOP else value.value


def _read_parallel(wire: Any, path: str) -> int:
    if wire is _ABSENT or wire is None:
        return WorkflowSettings().max_parallel_nodes
    return _integer(wire, path)


def _read_save_history(wire: Any, path: str) -> SaveHistory:
    if wire is _ABSENT or wire is None:
        return SaveHistory.ALL
    name = _string(wire, path)
    try:
        return SaveHistory(name)
    except ValueError:
        raise FlowEngineFormatError(
            path,
            f"unknown save_history {name!r}; expected {_choices([e.value for e in SaveHistory])}",
        ) from None


def _read_workflow_on_error(wire: Any, path: str) -> WorkflowOnError:
    return _decode_workflow_on_error(None if wire is _ABSENT else wire, path)


class _SettingsFields:
    READERS: Final[Mapping[str, Callable[[Any, str], Any]]] = {
        "max_parallel_nodes": _read_parallel,
        "on_error": _read_workflow_on_error,
        "max_execution_time_ms": _read_optional_int,
        "save_history": _read_save_history,
    }

    @classmethod
    def decode(cls, data: Any, path: str = "settings") -> dict[str, Any]:
        return {
            key: read(data.get(key, _ABSENT), f"{path}.{key}") for key, read in cls.READERS.items()
        }

    @classmethod
    def values(cls, settings: WorkflowSettings) -> dict[str, Any]:
        return {key: getattr(settings, key) for key in cls.READERS}

    @classmethod
    def encode(
        cls, settings: WorkflowSettings, original: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        encoders: dict[str, Callable[[Any, Any], Any]] = {
            "max_parallel_nodes": _as_is,
            "on_error": _encode_workflow_on_error,
            "max_execution_time_ms": _omit_none,
            "save_history": lambda value, wire: _OMIT if value is SaveHistory.ALL else value.value,
        }
        fields = {
            key: _field(getattr(settings, key), read, encoders[key])
            for key, read in cls.READERS.items()
        }
        return _assemble(original, fields)


def _decode_workflow_on_error(wire: Any, path: str) -> WorkflowOnError:
    if wire is None:
        return WorkflowOnError()
    if isinstance(wire, str):
        kind = _SIMPLE_ON_ERROR.get(wire)
        if kind is None:
            raise FlowEngineFormatError(path, f"unknown on_error {wire!r}; {_ON_ERROR_FORMS}")
        return WorkflowOnError(kind)
    if isinstance(wire, Mapping) and list(wire) == ["RetryWorkflow"]:
        retry = _object(wire["RetryWorkflow"], f"{path}.RetryWorkflow")
        attempts = _required(retry, "max_attempts", f"{path}.RetryWorkflow", _integer)
        return WorkflowOnError(WorkflowOnErrorKind.RETRY, max_attempts=attempts)
    raise FlowEngineFormatError(path, f"unknown on_error {_short(wire)}; {_ON_ERROR_FORMS}")


_ON_ERROR_FORMS: Final = (
    'expected "StopWorkflow", "ContinueOnError" or {"RetryWorkflow": {"max_attempts": n}}'
)


def _encode_workflow_on_error(value: WorkflowOnError, wire: Any) -> Any:
    if value.kind is WorkflowOnErrorKind.RETRY:
        retry = wire.get("RetryWorkflow") if isinstance(wire, Mapping) else None
        fresh = {"max_attempts": value.max_attempts}
        return {"RetryWorkflow": _keep_unknown(retry, fresh, ("max_attempts",))}
    if value.kind is WorkflowOnErrorKind.CONTINUE:
        return "ContinueOnError"
    return "StopWorkflow"


# --------------------------------------------------------------------------------------------
# Reading wire values, with paths in every error


def _required(data: Mapping[str, Any], key: str, path: str, read: Callable[[Any, str], Any]) -> Any:
    where = f"{path}.{key}" if path else key
    if key not in data:
        raise FlowEngineFormatError(where, "missing")
    return read(data[key], where)


def _optional(data: Mapping[str, Any], key: str, path: str, read: Callable[[Any, str], Any]) -> Any:
    value = data.get(key)
    if value is None:
        return None
    return read(value, f"{path}.{key}" if path else key)


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FlowEngineFormatError(path, f"expected an object, got {_kind(value)}")
    return value


def _array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise FlowEngineFormatError(path, f"expected an array, got {_kind(value)}")
    return list(value)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise FlowEngineFormatError(path, f"expected a string, got {_kind(value)}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FlowEngineFormatError(path, f"expected true or false, got {_kind(value)}")
    return value


def _number(value: Any, path: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FlowEngineFormatError(path, f"expected a number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FlowEngineFormatError(path, "expected a finite number")
    return value


def _integer(value: Any, path: str) -> int:
    number = _number(value, path)
    if isinstance(number, float):
        if not number.is_integer():
            raise FlowEngineFormatError(path, f"expected an integer, got {number!r}")
        return int(number)
    return number


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choices(names: Any) -> str:
    quoted = [repr(name) for name in names]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)


def _tidy_number(value: float) -> float | int:
    """``100.0`` -> ``100`` for new wire output (the original form is kept when unchanged)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _keep_unknown(wire: Any, fresh: dict[str, Any], known: Sequence[str]) -> dict[str, Any]:
    """``fresh`` plus the keys of the original ``wire`` object that runnel does not know."""
    if not isinstance(wire, Mapping):
        return fresh
    out = {key: _copy(value) for key, value in wire.items() if key not in known}
    out.update(fresh)
    return out


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data, so that canonical objects and outputs share nothing."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value
