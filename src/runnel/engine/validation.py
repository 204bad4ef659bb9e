"""Static checks of a workflow against the node catalogue, every problem reported at once.

``validate`` never stops at the first problem: a user fixing a workflow sees the whole list,
each problem naming its node or edge (and the config path when there is one). The message
says what is wrong without repeating where; ``str(problem)`` adds the location.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from runnel.engine.expressions import ExpressionEngine, has_expressions
from runnel.engine.node import ConfigField, FieldType, NodeManifest
from runnel.engine.registry import NodeRegistry
from runnel.model.workflow import Edge, Node, TriggerKind, Workflow, WorkflowOnErrorKind

__all__ = [
    "CODES",
    "ERROR_PORT",
    "Problem",
    "ValidationError",
    "ensure_valid",
    "validate",
]

#: A node whose ``on_error`` is ``continue`` sends its failure out of this port; any node may
#: have an edge from it.
ERROR_PORT: Final = "error"

#: Config keys every node accepts besides its schema: the simulate-mode pinned output, and
#: keys starting with ``_`` (editor notes, dialect scratch space).
_ALWAYS_ALLOWED_KEYS: Final = frozenset({"pinned_output"})

#: Every ``Problem.code``.
CODES: Final = (
    "empty_node_id",
    "duplicate_node_id",
    "empty_edge_id",
    "duplicate_edge_id",
    "unknown_node",
    "unknown_port",
    "unknown_node_type",
    "cycle",
    "unknown_config_key",
    "missing_config",
    "config_type",
    "config_enum",
    "config_range",
    "expression_syntax",
    "unknown_node_reference",
    "invalid_timeout",
    "invalid_retry",
    "invalid_setting",
    "duplicate_trigger_id",
    "invalid_trigger",
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow. ``message`` does not repeat the location."""

    code: str
    message: str
    node_id: str | None = None
    edge_id: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where: list[str] = []
        if self.node_id is not None:
            where.append(f"node {self.node_id!r}")
        if self.edge_id is not None:
            where.append(f"edge {self.edge_id!r}")
        if self.path:
            where.append(self.path)
        return f"{' '.join(where)}: {self.message}" if where else self.message


class ValidationError(Exception):
    """A workflow with problems; ``str`` lists them one per line."""

    def __init__(self, problems: Sequence[Problem], workflow_id: str | None = None) -> None:
        self.problems = tuple(problems)
        self.workflow_id = workflow_id
        super().__init__(self._text())

    def _text(self) -> str:
        count = len(self.problems)
        name = f"workflow {self.workflow_id!r}" if self.workflow_id is not None else "workflow"
        head = f"{name} is invalid ({count} problem{'' if count == 1 else 's'}):"
        return "\n".join([head, *(f"  - {problem} [{problem.code}]" for problem in self.problems)])

    def __str__(self) -> str:
        return self._text()


def ensure_valid(
    workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine | None = None
) -> None:
    """Raise ValidationError listing every problem, if there is any."""
    problems = validate(workflow, registry, expressions)
    if problems:
        raise ValidationError(problems, workflow.id)


def validate(
    workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine | None = None
) -> list[Problem]:
    """Every problem of ``workflow``, in a stable order: nodes, edges, graph, settings."""
    engine = expressions if expressions is not None else _default_engine()
    problems: list[Problem] = []
    nodes = _check_node_ids(workflow.nodes, problems)
    manifests: dict[str, NodeManifest] = {}
    names = {node.id for node in workflow.nodes} | {
        node.name for node in workflow.nodes if node.name
    }
    for node in workflow.nodes:
        manifest = _manifest(node, registry, problems)
        if manifest is not None:
            manifests.setdefault(node.id, manifest)
            _check_config(node, manifest, problems)
        _check_expressions(node, engine, names, problems)
        _check_node_limits(node, problems)
    _check_edges(workflow.edges, nodes, manifests, problems)
    _check_cycles(workflow, nodes, problems)
    _check_settings(workflow, problems)
    _check_triggers(workflow, problems)
    return problems


@functools.cache
def _default_engine() -> ExpressionEngine:
    return ExpressionEngine()


# --------------------------------------------------------------------------------------------
# Nodes


def _check_node_ids(nodes: Iterable[Node], problems: list[Problem]) -> dict[str, Node]:
    """Node by id (the first of duplicates), reporting empty and duplicate ids."""
    by_id: dict[str, Node] = {}
    reported: set[str] = set()
    for index, node in enumerate(nodes):
        if not node.id:
            problems.append(
                Problem(
                    "empty_node_id",
                    f"node #{index + 1} (type {node.type!r}) has an empty id",
                    node_id=node.id,
                )
            )
            continue
        if node.id in by_id:
            if node.id not in reported:
                reported.add(node.id)
                problems.append(
                    Problem(
                        "duplicate_node_id",
                        f"more than one node has the id {node.id!r}; node ids must be unique",
                        node_id=node.id,
                    )
                )
            continue
        by_id[node.id] = node
    return by_id


def _manifest(node: Node, registry: NodeRegistry, problems: list[Problem]) -> NodeManifest | None:
    node_type = registry.find(node.type)
    if node_type is not None:
        return node_type.manifest
    suggestions = registry.suggest(node.type)
    hint = f"; did you mean {_or_list(suggestions)}?" if suggestions else ""
    problems.append(
        Problem(
            "unknown_node_type",
            f"unknown node type {node.type!r}{hint}",
            node_id=node.id,
            path="type",
        )
    )
    return None


def _check_config(node: Node, manifest: NodeManifest, problems: list[Problem]) -> None:
    config = node.config
    fields = {field.name: field for field in manifest.config}
    for key in config:
        if key in fields or key in _ALWAYS_ALLOWED_KEYS or key.startswith("_"):
            continue
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        elif fields:
            hint = f"; {manifest.type} accepts {', '.join(repr(name) for name in fields)}"
        else:
            hint = f"; {manifest.type} takes no config"
        problems.append(
            Problem(
                "unknown_config_key",
                f"unknown config key {key!r}{hint}",
                node_id=node.id,
                path=f"config.{key}",
            )
        )
    for field in manifest.config:
        value = config.get(field.name)
        if value is None:
            if field.required:
                problems.append(
                    Problem(
                        "missing_config",
                        f"config {field.name!r} is required ({_describe_field(field)})",
                        node_id=node.id,
                        path=f"config.{field.name}",
                    )
                )
            continue
        message = _field_problem(field, value)
        if message is not None:
            code, text = message
            problems.append(Problem(code, text, node_id=node.id, path=f"config.{field.name}"))


def _field_problem(field: ConfigField, value: Any) -> tuple[str, str] | None:
    """(code, message) when ``value`` does not fit ``field``; an expression fits anything."""
    if isinstance(value, str) and "{{" in value:
        return None
    if not _fits_type(field.type, value):
        return (
            "config_type",
            f"config {field.name!r} must be {_type_phrase(field.type)}, got {_value_phrase(value)}",
        )
    if field.enum is not None and value not in field.enum:
        allowed = ", ".join(repr(item) for item in field.enum)
        return ("config_enum", f"config {field.name!r} must be one of {allowed}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if field.minimum is not None and value < field.minimum:
            return (
                "config_range",
                f"config {field.name!r} must be at least {_number(field.minimum)}, got {value!r}",
            )
        if field.maximum is not None and value > field.maximum:
            return (
                "config_range",
                f"config {field.name!r} must be at most {_number(field.maximum)}, got {value!r}",
            )
    return None


def _fits_type(kind: FieldType, value: Any) -> bool:
    if kind is FieldType.ANY:
        return True
    if kind is FieldType.STRING:
        return isinstance(value, str)
    if kind is FieldType.BOOLEAN:
        return isinstance(value, bool)
    if kind is FieldType.INTEGER:
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return not isinstance(value, float) or math.isfinite(value)
    if kind is FieldType.OBJECT:
        return isinstance(value, Mapping)
    return isinstance(value, list | tuple)  # ARRAY


def _check_expressions(
    node: Node, engine: ExpressionEngine, names: set[str], problems: list[Problem]
) -> None:
    sources: list[tuple[str, Any]] = [("config", node.config)]
    if node.filters is not None:
        sources.append(("filters", node.filters))
    for prefix, value in sources:
        if not has_expressions(value) and not _has_statement(value):
            continue
        for path, message in engine.check(value):
            problems.append(
                Problem(
                    "expression_syntax",
                    message,
                    node_id=node.id,
                    path=f"{prefix}.{path}" if path else prefix,
                )
            )
        seen: set[tuple[str, str]] = set()
        for ref in engine.find_references(value):
            if ref.root != "node" or ref.key is None or ref.key in names:
                continue
            if (ref.path, ref.key) in seen:
                continue
            seen.add((ref.path, ref.key))
            close = difflib.get_close_matches(ref.key, sorted(names), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                Problem(
                    "unknown_node_reference",
                    f"$node.{ref.key} refers to no node (by id or name){hint}",
                    node_id=node.id,
                    path=f"{prefix}.{ref.path}" if ref.path else prefix,
                )
            )


def _has_statement(value: Any) -> bool:
    if isinstance(value, str):
        return "{%" in value
    if isinstance(value, Mapping):
        return any(_has_statement(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_statement(item) for item in value)
    return False


def _check_node_limits(node: Node, problems: list[Problem]) -> None:
    if node.timeout_ms is not None and node.timeout_ms < 0:
        problems.append(
            Problem(
                "invalid_timeout",
                f"timeout_ms must not be negative, got {node.timeout_ms}",
                node_id=node.id,
                path="timeout_ms",
            )
        )
    retry = node.retry
    if retry is None:
        return
    checks = [
        ("max_attempts", retry.max_attempts, retry.max_attempts < 1, "at least 1"),
        ("delay_ms", retry.delay_ms, retry.delay_ms < 0, "0 or more"),
        ("backoff_multiplier", retry.backoff_multiplier, retry.backoff_multiplier < 0, "0 or more"),
        (
            "max_delay_ms",
            retry.max_delay_ms,
            retry.max_delay_ms is not None and retry.max_delay_ms < 0,
            "0 or more",
        ),
        ("jitter", retry.jitter, not 0 <= retry.jitter <= 1, "between 0 and 1"),
    ]
    for name, value, bad, expected in checks:
        if bad:
            problems.append(
                Problem(
                    "invalid_retry",
                    f"retry {name} must be {expected}, got {value}",
                    node_id=node.id,
                    path=f"retry.{name}",
                )
            )


# --------------------------------------------------------------------------------------------
# Edges and graph


def _check_edges(
    edges: Iterable[Edge],
    nodes: Mapping[str, Node],
    manifests: Mapping[str, NodeManifest],
    problems: list[Problem],
) -> None:
    seen: set[str] = set()
    reported: set[str] = set()
    for index, edge in enumerate(edges):
        if not edge.id:
            problems.append(
                Problem("empty_edge_id", f"edge #{index + 1} has an empty id", edge_id=edge.id)
            )
        elif edge.id in seen:
            if edge.id not in reported:
                reported.add(edge.id)
                problems.append(
                    Problem(
                        "duplicate_edge_id",
                        f"more than one edge has the id {edge.id!r}; edge ids must be unique",
                        edge_id=edge.id,
                    )
                )
        else:
            seen.add(edge.id)
        for end, node_id in (("source", edge.source), ("target", edge.target)):
            if node_id not in nodes:
                close = difflib.get_close_matches(node_id, list(nodes), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    Problem(
                        "unknown_node",
                        f"edge {end} {node_id!r} is not a node of this workflow{hint}",
                        edge_id=edge.id,
                        path=end,
                    )
                )
        source = manifests.get(edge.source)
        if source is not None and edge.source in nodes:
            _check_source_port(edge, nodes[edge.source], source, problems)
        target = manifests.get(edge.target)
        if target is not None and edge.target in nodes and not target.dynamic_inputs:
            ports = target.input_port_names()
            if edge.target_port not in ports:
                problems.append(
                    Problem(
                        "unknown_port",
                        f"no input port {edge.target_port!r} on {target.type} node"
                        f" {edge.target!r}{_ports_hint(edge.target_port, ports)}",
                        node_id=edge.target,
                        edge_id=edge.id,
                        path="target_port",
                    )
                )


def _check_source_port(
    edge: Edge, node: Node, manifest: NodeManifest, problems: list[Problem]
) -> None:
    if edge.source_port == ERROR_PORT:
        return
    if manifest.output_ports_for is not None and has_expressions(node.config):
        return  # the ports depend on values known only when the node runs
    try:
        ports = manifest.output_port_names(node.config)
    except Exception:  # a config the port function rejects is reported by the schema check
        return
    if edge.source_port not in ports:
        problems.append(
            Problem(
                "unknown_port",
                f"no output port {edge.source_port!r} on {manifest.type} node"
                f" {edge.source!r}{_ports_hint(edge.source_port, ports)}",
                node_id=edge.source,
                edge_id=edge.id,
                path="source_port",
            )
        )


def _check_cycles(workflow: Workflow, nodes: Mapping[str, Node], problems: list[Problem]) -> None:
    """One problem per strongly connected component that holds a cycle, naming it in order."""
    order = {node_id: index for index, node_id in enumerate(nodes)}
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in workflow.edges:
        if edge.source in nodes and edge.target in nodes:
            targets = successors[edge.source]
            if edge.target not in targets:
                targets.append(edge.target)
    for component in _strongly_connected(list(nodes), successors):
        start = min(component, key=order.__getitem__)
        if len(component) == 1 and start not in successors[start]:
            continue
        cycle = _shortest_cycle(start, set(component), successors)
        path = " -> ".join(repr(node_id) for node_id in [*cycle, cycle[0]])
        problems.append(
            Problem(
                "cycle",
                f"the graph has a cycle: {path}; a workflow must be acyclic",
                node_id=start,
            )
        )


def _strongly_connected(
    node_ids: list[str], successors: Mapping[str, list[str]]
) -> list[list[str]]:
    """Tarjan's algorithm, iterative (graphs may be deeper than the recursion limit)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in node_ids:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node_id, child = work.pop()
            if child == 0:
                index_of[node_id] = low[node_id] = counter
                counter += 1
                stack.append(node_id)
                on_stack.add(node_id)
            targets = successors[node_id]
            if child < len(targets):
                work.append((node_id, child + 1))
                target = targets[child]
                if target not in index_of:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node_id] = min(low[node_id], index_of[target])
                continue
            if low[node_id] == index_of[node_id]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node_id:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
    return components


def _shortest_cycle(
    start: str, members: set[str], successors: Mapping[str, list[str]]
) -> list[str]:
    """The nodes of a shortest cycle through ``start`` inside one component, in edge order."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node_id in frontier:
            for target in successors[node_id]:
                if target not in members:
                    continue
                if target == start:
                    cycle = [node_id]
                    while cycle[-1] != start:
                        cycle.append(parent[cycle[-1]])
                    cycle.reverse()
                    return cycle
                if target not in parent:
                    parent[target] = node_id
                    following.append(target)
        frontier = following
    return [start]  # pragma: no cover - a component with a cycle always closes


# --------------------------------------------------------------------------------------------
# Settings and triggers


def _check_settings(workflow: Workflow, problems: list[Problem]) -> None:
    settings = workflow.settings
    if settings.max_parallel_nodes < 1:
        problems.append(
            Problem(
                "invalid_setting",
                f"max_parallel_nodes must be at least 1, got {settings.max_parallel_nodes}",
                path="settings.max_parallel_nodes",
            )
        )
    limit = settings.max_execution_time_ms
    if limit is not None and limit < 0:
        problems.append(
            Problem(
                "invalid_setting",
                f"max_execution_time_ms must not be negative, got {limit}",
                path="settings.max_execution_time_ms",
            )
        )
    on_error = settings.on_error
    if on_error.kind is WorkflowOnErrorKind.RETRY and on_error.max_attempts < 1:
        problems.append(
            Problem(
                "invalid_setting",
                f"RetryWorkflow max_attempts must be at least 1, got {on_error.max_attempts}",
                path="settings.on_error.max_attempts",
            )
        )


_TRIGGER_FIELDS: Final = {
    TriggerKind.CRON: "expression",
    TriggerKind.WEBHOOK: "path",
    TriggerKind.EVENT: "event_type",
}


def _check_triggers(workflow: Workflow, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for index, trigger in enumerate(workflow.triggers):
        where = f"triggers[{index}]"
        if trigger.id in seen:
            problems.append(
                Problem(
                    "duplicate_trigger_id",
                    f"more than one trigger has the id {trigger.id!r}",
                    path=where,
                )
            )
        seen.add(trigger.id)
        needed = _TRIGGER_FIELDS.get(trigger.kind)
        if needed is None:
            continue
        value = trigger.config.get(needed)
        if not isinstance(value, str) or not value.strip():
            problems.append(
                Problem(
                    "invalid_trigger",
                    f"a {trigger.kind.value} trigger needs a non-empty {needed!r}",
                    path=f"{where}.{needed}",
                )
            )


# --------------------------------------------------------------------------------------------
# Wording


def _or_list(items: Sequence[str]) -> str:
    quoted = [repr(item) for item in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _ports_hint(port: str, ports: Sequence[str]) -> str:
    if not ports:
        return " (it has none)"
    close = difflib.get_close_matches(port, list(ports), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (ports: {', '.join(repr(name) for name in ports)})"


def _type_phrase(kind: FieldType) -> str:
    return {
        FieldType.STRING: "a string",
        FieldType.NUMBER: "a number",
        FieldType.INTEGER: "an integer",
        FieldType.BOOLEAN: "true or false",
        FieldType.OBJECT: "an object",
        FieldType.ARRAY: "an array",
        FieldType.ANY: "any value",
    }[kind]


def _value_phrase(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _describe_field(field: ConfigField) -> str:
    text = _type_phrase(field.type)
    if field.description:
        text = f"{text}: {field.description}"
    return text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
