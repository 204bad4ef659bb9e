"""The Flowork GUI ``workflow_data`` to and from the canonical workflow.

Wire shape (PROTOCOLS.md, "Workflow data")::

    {"nodes": [{"id", "name", "x", "y", "module_id", "config_values", "data"}],
     "connections": [{"id", "source", "target", "source_port_name", "target_port_name",
                      "type", "animated"}],
     "global_loop_config": {"isEnabled", "iterations", "isDelayEnabled",
                            "delayType": "static" | "random", "delayStatic",
                            "delayRandomMin", "delayRandomMax"}}

Mapping:

- A node's ``module_id`` becomes the node ``type`` unchanged; the registry resolves it (the
  Flowork module ids are aliases of built-in node types, as flow8's ``appId`` is).
- A connection becomes an edge. A Flowork module fires one output (default ``output``) or,
  when it fails, ``error``; a runnel node fires its own named ports. So a ``source_port_name``
  that is null, empty or ``output`` becomes the node type's first output port (unless the type
  has a port called ``output``), a null, empty or ``input`` ``target_port_name`` the target's
  first input port; other names stay as they are. This needs the node types' ports, which the
  model cannot see: the caller passes ``ports`` (``runnel.services.components.flowork_ports``
  builds it from a registry). Without it, names stay as given and null ones become
  ``output`` / ``value``.
- A connection from port ``error`` makes its source node ``on_error: continue``: the executor
  then fires the failure ``{"error", "kind", "failed_node_id"}`` on the ``error`` port.
- Connections of ``type: "tool"`` are not edges (they do not make their target a non-start
  node): they are kept, with their place in the list, in the workflow's ``extra``.
- ``global_loop_config`` is kept in ``settings.extra["flowork"]``; ``loop_config`` reads it.
- ``{{vars.NAME}}`` in ``config_values`` is kept as it is: the expression engine renders it
  from the execution's variables.

Lossless: every wire object is kept, as it came, in the ``extra["flowork"]`` of its canonical
counterpart; going back, a field whose canonical value is unchanged is written exactly as it
came, so ``workflow_to_flowork(workflow_from_flowork(x, ...)) == x``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from runnel.model.values import describe_kind
from runnel.model.workflow import (
    DEFAULT_PORT,
    Edge,
    Node,
    OnError,
    Position,
    Workflow,
    WorkflowSettings,
)

__all__ = [
    "ERROR_PORT",
    "EXTRA_KEY",
    "FLOWORK_INPUT",
    "FLOWORK_MODULE_IDS",
    "FLOWORK_OUTPUT",
    "MAX_DELAY_SECONDS",
    "MAX_ITERATIONS",
    "TOOL_CONNECTION",
    "DelayType",
    "FloworkFormatError",
    "LoopConfig",
    "ModulePorts",
    "PortLookup",
    "loop_config",
    "parse_loop_config",
    "workflow_from_flowork",
    "workflow_to_flowork",
]

#: The key under which each canonical object keeps its original Flowork form.
EXTRA_KEY: Final = "flowork"
#: The port a Flowork module fires by default.
FLOWORK_OUTPUT: Final = "output"
#: The input port name Flowork GUIs use for "the" input.
FLOWORK_INPUT: Final = "input"
#: The port a failing node fires (the executor's ``ERROR_PORT``; the model cannot import it).
ERROR_PORT: Final = "error"
#: A connection ``type`` that is no data edge.
TOOL_CONNECTION: Final = "tool"
#: The original Flowork module ids that built-in node types accept as aliases.
FLOWORK_MODULE_IDS: Final = (
    "debug_popup_module",
    "static_data_provider_module",
    "cron_trigger",
    "prompt_receiver_module",
)
#: Bounds of ``global_loop_config`` (a runaway loop would hold a worker for ever).
MAX_ITERATIONS: Final = 100_000
MAX_DELAY_SECONDS: Final = 86_400.0
#: Deepest nesting of objects and arrays inside a value.
MAX_DEPTH: Final = 100


class FloworkFormatError(ValueError):
    """A ``workflow_data`` of the wrong shape; ``path`` says where (``nodes[0].id``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class ModulePorts:
    """The ports of the node type a module id names, as the port mapping needs them."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


#: ``(module_id, config_values) -> its ports``, or None for an unknown module id.
PortLookup = Callable[[str, Mapping[str, Any]], ModulePorts | None]


class DelayType(StrEnum):
    STATIC = "static"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """``global_loop_config``: run the whole graph ``runs`` times, waiting between runs."""

    enabled: bool = False
    iterations: int = 1
    delay_enabled: bool = False
    delay_type: DelayType = DelayType.STATIC
    delay_static: float = 1.0
    delay_random_min: float = 1.0
    delay_random_max: float = 5.0

    @property
    def runs(self) -> int:
        """How many times the graph runs (1 when the loop is off)."""
        return self.iterations if self.enabled else 1

    def delay_seconds(self, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the next run; ``rng`` returns a float in [0, 1)."""
        if not self.enabled or not self.delay_enabled:
            return 0.0
        if self.delay_type is DelayType.STATIC:
            return self.delay_static
        span = self.delay_random_max - self.delay_random_min
        return self.delay_random_min + span * min(max(rng(), 0.0), 1.0)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()
_LOOP_KEY: Final = "global_loop_config"
_LISTS: Final = ("nodes", "connections")
_DELAY_TYPES: Final = frozenset(kind.value for kind in DelayType)


# --------------------------------------------------------------------------------------------
# Wire -> canonical


def workflow_from_flowork(
    data: object,
    *,
    workflow_id: str,
    name: str,
    owner: str | None = None,
    ports: PortLookup | None = None,
) -> Workflow:
    """A Flowork ``workflow_data`` -> the canonical workflow.

    Raises FloworkFormatError, naming the path, for any shape it cannot read. ``ports`` maps
    Flowork port names to the node types' ports (see the module docstring).
    """
    top = _json_object(data, "")
    raw_nodes = _list(top.get("nodes", _ABSENT), "nodes")
    raw_connections = _list(top.get("connections", _ABSENT), "connections")
    nodes: list[Node] = []
    seen_nodes: set[str] = set()
    for index, item in enumerate(raw_nodes):
        node = _node_from_wire(item, f"nodes[{index}]")
        if node.id in seen_nodes:
            raise FloworkFormatError(f"nodes[{index}].id", f"duplicate node id {node.id!r}")
        seen_nodes.add(node.id)
        nodes.append(node)
    by_id = {node.id: node for node in nodes}
    edges: list[Edge] = []
    tools: list[dict[str, Any]] = []
    seen_connections: set[str] = set()
    failing: set[str] = set()
    for index, item in enumerate(raw_connections):
        path = f"connections[{index}]"
        wire = _object(item, path)
        values = _connection_values(wire, path, by_id)
        if values["id"] in seen_connections:
            raise FloworkFormatError(f"{path}.id", f"duplicate connection id {values['id']!r}")
        seen_connections.add(values["id"])
        if values["type"] == TOOL_CONNECTION:
            tools.append({"index": index, "connection": wire})
            continue
        edges.append(_edge_from_wire(wire, values, by_id, ports))
        if values["source_port_name"] == ERROR_PORT:
            failing.add(values["source"])
    if failing:
        nodes = [
            replace(node, on_error=OnError.CONTINUE) if node.id in failing else node
            for node in nodes
        ]
    settings = WorkflowSettings()
    if _LOOP_KEY in top:
        parse_loop_config(top[_LOOP_KEY], _LOOP_KEY)
        settings = WorkflowSettings(extra={EXTRA_KEY: {_LOOP_KEY: top[_LOOP_KEY]}})
    # The top level without its lists (they live on as nodes and edges) and the loop config
    # (it lives on in the settings); an empty list keeps each list's place.
    kept = {
        key: ([] if key in _LISTS and value is not None else value)
        for key, value in top.items()
        if key != _LOOP_KEY
    }
    return Workflow(
        id=workflow_id,
        name=name,
        nodes=tuple(nodes),
        edges=tuple(edges),
        settings=settings,
        owner=owner,
        extra={EXTRA_KEY: {"workflow": kept, "tool_connections": tools}},
    )


def _node_from_wire(item: Any, path: str) -> Node:
    wire = _object(item, path)
    node_id = _read_id(wire.get("id", _ABSENT), f"{path}.id")
    return Node(
        id=node_id,
        type=_read_id(wire.get("module_id", _ABSENT), f"{path}.module_id"),
        name=_read_name(wire.get("name", _ABSENT), f"{path}.name"),
        config=_read_config(wire.get("config_values", _ABSENT), f"{path}.config_values"),
        position=_read_position(wire, path),
        extra={EXTRA_KEY: wire},
    )


def _connection_values(
    wire: Mapping[str, Any], path: str, nodes: Mapping[str, Node]
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": _read_id(wire.get("id", _ABSENT), f"{path}.id"),
        "source": _read_id(wire.get("source", _ABSENT), f"{path}.source"),
        "target": _read_id(wire.get("target", _ABSENT), f"{path}.target"),
        "source_port_name": _read_port(
            wire.get("source_port_name", _ABSENT), f"{path}.source_port_name"
        ),
        "target_port_name": _read_port(
            wire.get("target_port_name", _ABSENT), f"{path}.target_port_name"
        ),
        "type": _read_port(wire.get("type", _ABSENT), f"{path}.type"),
    }
    animated = wire.get("animated")
    if animated is not None and not isinstance(animated, bool):
        raise FloworkFormatError(
            f"{path}.animated", f"must be true or false, got {describe_kind(animated)}"
        )
    for end in ("source", "target"):
        if values[end] not in nodes:
            raise FloworkFormatError(
                f"{path}.{end}", f"{values[end]!r} is not a node of this workflow"
            )
    return values


def _edge_from_wire(
    wire: Mapping[str, Any],
    values: Mapping[str, Any],
    nodes: Mapping[str, Node],
    ports: PortLookup | None,
) -> Edge:
    source = nodes[values["source"]]
    target = nodes[values["target"]]
    source_port = _source_port(values["source_port_name"], source, ports)
    target_port = _target_port(values["target_port_name"], target, ports)
    return Edge(
        id=values["id"],
        source=source.id,
        target=target.id,
        source_port=source_port,
        target_port=target_port,
        # The mapped ports too, so that going back can tell whether they changed since.
        extra={EXTRA_KEY: {"connection": wire, "ports": [source_port, target_port]}},
    )


def _ports_of(node: Node, ports: PortLookup | None) -> ModulePorts | None:
    return ports(node.type, node.config) if ports is not None else None


def _source_port(name: str | None, node: Node, ports: PortLookup | None) -> str:
    if name and name not in (FLOWORK_OUTPUT, ERROR_PORT):
        return name
    if name == ERROR_PORT:
        return ERROR_PORT
    known = _ports_of(node, ports)
    if known is None or not known.outputs or FLOWORK_OUTPUT in known.outputs:
        return FLOWORK_OUTPUT
    return known.outputs[0]


def _target_port(name: str | None, node: Node, ports: PortLookup | None) -> str:
    if name and name != FLOWORK_INPUT:
        return name
    known = _ports_of(node, ports)
    if known is None or not known.inputs:
        return name or DEFAULT_PORT
    if name == FLOWORK_INPUT and FLOWORK_INPUT in known.inputs:
        return FLOWORK_INPUT
    return known.inputs[0]


# --------------------------------------------------------------------------------------------
# global_loop_config


def loop_config(workflow: Workflow) -> LoopConfig:
    """The workflow's ``global_loop_config`` (the default, off, when it has none).

    Raises FloworkFormatError if the stored config is malformed (it cannot be when the
    workflow came from ``workflow_from_flowork``).
    """
    saved = workflow.settings.extra.get(EXTRA_KEY)
    if not isinstance(saved, Mapping):
        return LoopConfig()
    return parse_loop_config(saved.get(_LOOP_KEY, _ABSENT), _LOOP_KEY)


def parse_loop_config(value: object, path: str = _LOOP_KEY) -> LoopConfig:
    """A wire ``global_loop_config`` (absent or null: the default) -> LoopConfig."""
    if value is _ABSENT or value is None:
        return LoopConfig()
    wire = _object(value, path)
    default = LoopConfig()
    delay_type = wire.get("delayType")
    if delay_type is None:
        kind = DelayType.STATIC
    elif isinstance(delay_type, str) and delay_type in _DELAY_TYPES:
        kind = DelayType(delay_type)
    else:
        raise FloworkFormatError(
            f"{path}.delayType", f"must be 'static' or 'random', got {_show(delay_type)}"
        )
    config = LoopConfig(
        enabled=_flag(wire.get("isEnabled"), f"{path}.isEnabled"),
        iterations=int(
            _number(wire.get("iterations"), f"{path}.iterations", default.iterations, 1, True)
        ),
        delay_enabled=_flag(wire.get("isDelayEnabled"), f"{path}.isDelayEnabled"),
        delay_type=kind,
        delay_static=_number(wire.get("delayStatic"), f"{path}.delayStatic", 1.0, 0, False),
        delay_random_min=_number(
            wire.get("delayRandomMin"), f"{path}.delayRandomMin", 1.0, 0, False
        ),
        delay_random_max=_number(
            wire.get("delayRandomMax"), f"{path}.delayRandomMax", 5.0, 0, False
        ),
    )
    if kind is DelayType.RANDOM and config.delay_random_min > config.delay_random_max:
        raise FloworkFormatError(
            f"{path}.delayRandomMin", "must not be greater than delayRandomMax"
        )
    return config


def _flag(value: Any, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FloworkFormatError(path, f"must be true or false, got {describe_kind(value)}")
    return value


def _number(value: Any, path: str, default: float, low: float, integral: bool) -> float:
    """A number (or a numeric string, as GUI form fields send) within the loop's bounds."""
    if value is None:
        return default
    high = MAX_ITERATIONS if integral else MAX_DELAY_SECONDS
    what = "a whole number" if integral else "a number of seconds"
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = _float(value)
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or (integral and not number.is_integer()):
        raise FloworkFormatError(path, f"must be {what}, got {_show(value)}")
    if not low <= number <= high:
        raise FloworkFormatError(path, f"must be between {low:g} and {high:g}, got {number:g}")
    return number


# --------------------------------------------------------------------------------------------
# Canonical -> wire


def workflow_to_flowork(workflow: Workflow) -> dict[str, Any]:
    """The canonical workflow -> a Flowork ``workflow_data`` (the original one, if unchanged)."""
    saved = _saved(workflow.extra)
    top = saved.get("workflow") if saved is not None else None
    out: dict[str, Any] = dict(top) if isinstance(top, Mapping) else {}
    connections = [_edge_to_wire(edge) for edge in workflow.edges]
    tools = saved.get("tool_connections") if saved is not None else None
    for item in tools if isinstance(tools, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("index"), int):
            connections.insert(min(max(item["index"], 0), len(connections)), item["connection"])
    lists = {"nodes": [_node_to_wire(node) for node in workflow.nodes], "connections": connections}
    for key, items in lists.items():
        # An absent or null list that is still empty stays as it came.
        if items or not isinstance(top, Mapping) or out.get(key) is not None:
            out[key] = items
    settings = _saved(workflow.settings.extra)
    if settings is not None and _LOOP_KEY in settings:
        out[_LOOP_KEY] = settings[_LOOP_KEY]
    copied: dict[str, Any] = _plain(out)
    return copied


def _saved(extra: Mapping[str, Any]) -> Mapping[str, Any] | None:
    saved = extra.get(EXTRA_KEY)
    return saved if isinstance(saved, Mapping) else None


def _node_to_wire(node: Node) -> dict[str, Any]:
    saved = _saved(node.extra)
    if saved is None:
        fresh: dict[str, Any] = {
            "id": node.id,
            "name": node.name,
            "module_id": node.type,
            "config_values": dict(node.config),
        }
        if node.position is not None:
            fresh.update(x=node.position.x, y=node.position.y)
        return fresh
    original: Mapping[str, Any] = saved
    out = dict(original)
    _put(out, original, "id", node.id, lambda wire: wire)
    _put(out, original, "name", node.name, lambda wire: None if wire is _ABSENT else wire)
    _put(out, original, "module_id", node.type, lambda wire: wire)
    config = dict(node.config)
    _put(out, original, "config_values", config, _decoded_config)
    x, y = (node.position.x, node.position.y) if node.position is not None else (None, None)
    _put(out, original, "x", x, _decoded_coordinate)
    _put(out, original, "y", y, _decoded_coordinate)
    return out


def _decoded_config(wire: Any) -> Any:
    return {} if wire is _ABSENT or wire is None else wire


def _decoded_coordinate(wire: Any) -> Any:
    return None if wire is _ABSENT or wire is None else float(wire)


def _put(
    out: dict[str, Any],
    original: Mapping[str, Any],
    key: str,
    value: Any,
    decode: Callable[[Any], Any],
) -> None:
    """Write ``value`` under ``key`` unless ``original``'s form of it still holds."""
    wire = original.get(key, _ABSENT)
    try:
        still = _same(decode(wire), value)
    except (TypeError, ValueError):
        still = False  # a corrupt original is written afresh
    if still:
        return
    if value is None and key != "name":
        out.pop(key, None)  # no position: no coordinates (a removed name is written null)
    else:
        out[key] = value


def _edge_to_wire(edge: Edge) -> dict[str, Any]:
    saved = _saved(edge.extra)
    connection = saved.get("connection") if saved is not None else None
    mapped = saved.get("ports") if saved is not None else None
    if not isinstance(connection, Mapping):
        return {
            "id": edge.id,
            "source": edge.source,
            "target": edge.target,
            "source_port_name": edge.source_port,
            "target_port_name": edge.target_port,
            "type": "data",
        }
    out = dict(connection)
    for key, value in (("id", edge.id), ("source", edge.source), ("target", edge.target)):
        if connection.get(key) != value:
            out[key] = value
    before = mapped if isinstance(mapped, list) and len(mapped) == 2 else [None, None]
    if before[0] != edge.source_port:
        out["source_port_name"] = edge.source_port
    if before[1] != edge.target_port:
        out["target_port_name"] = edge.target_port
    return out


def _same(left: Any, right: Any) -> bool:
    """Equal, and of the same JSON kind all the way down (``1`` is not ``True`` nor ``1.0``)."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _plain(value: Any) -> Any:
    """A fresh copy made of dicts and lists, so callers may change it."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# Readers


def _json_object(value: object, path: str) -> dict[str, Any]:
    """``value`` checked to be a JSON object of plain JSON, copied."""
    checked = _json(value, path, 0)
    if not isinstance(checked, dict):
        raise FloworkFormatError(path, f"must be an object, got {describe_kind(value)}")
    return checked


def _json(value: object, path: str, depth: int) -> Any:
    """A copy of ``value`` if it is plain JSON (finite numbers, string keys); else the error."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FloworkFormatError(path, "must be plain JSON (no NaN or infinity)")
        return float(value)
    if depth >= MAX_DEPTH:
        raise FloworkFormatError(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise FloworkFormatError(path, f"object keys must be strings, got {key!r}")
            copied[key] = _json(item, _join(path, key), depth + 1)
        return copied
    if isinstance(value, list):
        return [_json(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
    raise FloworkFormatError(path, f"must be plain JSON, got {type(value).__name__}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FloworkFormatError(path, f"must be an object, got {describe_kind(value)}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is _ABSENT or value is None:
        return []
    if not isinstance(value, list):
        raise FloworkFormatError(path, f"must be an array, got {describe_kind(value)}")
    return value


def _read_id(value: Any, path: str) -> str:
    if value is _ABSENT or value is None:
        raise FloworkFormatError(path, "missing")
    if not isinstance(value, str) or not value.strip():
        raise FloworkFormatError(path, f"must be a non-empty string, got {_show(value)}")
    return value


def _read_name(value: Any, path: str) -> str | None:
    if value is _ABSENT or value is None:
        return None
    if not isinstance(value, str):
        raise FloworkFormatError(path, f"must be a string, got {describe_kind(value)}")
    return value


def _read_port(value: Any, path: str) -> str | None:
    if value is _ABSENT or value is None:
        return None
    if not isinstance(value, str):
        raise FloworkFormatError(path, f"must be a string or null, got {describe_kind(value)}")
    return value


def _read_config(value: Any, path: str) -> dict[str, Any]:
    if value is _ABSENT or value is None:
        return {}
    return _object(value, path)


def _read_position(wire: Mapping[str, Any], path: str) -> Position | None:
    x = _read_coordinate(wire.get("x"), f"{path}.x")
    y = _read_coordinate(wire.get("y"), f"{path}.y")
    if x is None and y is None:
        return None
    if x is None or y is None:
        missing = "x" if x is None else "y"
        raise FloworkFormatError(f"{path}.{missing}", "missing (x and y go together)")
    return Position(x, y)


def _read_coordinate(value: Any, path: str) -> float | None:
    if value is None:
        return None
    number = _float(value) if isinstance(value, int | float) else None
    if number is None or isinstance(value, bool) or not math.isfinite(number):
        raise FloworkFormatError(path, f"must be a finite number, got {_show(value)}")
    return number


def _float(value: float) -> float | None:
    """``value`` as a float; None for an integer too large for one."""
    try:
        return float(value)
    except OverflowError:
        return None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    return describe_kind(value)
