"""A workflow prepared for execution: adjacency, order, compiled config. Built once per version.

``plan_for`` caches plans: a saved version (``version > 0``) by its id and version, being
immutable, and an unsaved workflow (version 0, e.g. one run straight from code or a test)
by the object itself, as long as that object lives in the cache (a ``Workflow`` is frozen;
a caller that changes a node's config dict in place must make a new ``Workflow``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runnel.engine.expressions import CompiledValue, ExpressionEngine
from runnel.engine.node import NodeType
from runnel.engine.registry import NodeRegistry
from runnel.model.workflow import DEFAULT_PORT, Edge, Node, Workflow

__all__ = ["GraphCycleError", "Plan", "Step", "clear_cache", "plan_for"]


class GraphCycleError(ValueError):
    def __init__(self, nodes: list[str]) -> None:
        super().__init__(f"the graph has a cycle through {' -> '.join(nodes)}")
        self.nodes = nodes


@dataclass(frozen=True, slots=True)
class Step:
    """What the executor reads to run one node, resolved once per plan."""

    node: Node
    #: The node type that runs it (a type may hand a plainer one for this node:
    #: ``for_node``, see ``_node_type``).
    type: NodeType
    incoming: tuple[Edge, ...]
    outgoing: tuple[Edge, ...]
    #: The type's manifest says ``pure`` (see ``NodeManifest.pure``).
    pure: bool
    config: CompiledValue
    #: The config itself when it holds no expression (else None).
    static_config: Mapping[str, Any] | None
    filters: CompiledValue | None
    #: Runs on its first fired input (``flow.merge`` mode first).
    first_input: bool
    #: A start node: its default port gets the whole input object when not given.
    default_input: bool
    #: No filters, no approval, no retry policy: one attempt, nothing to decide before it.
    simple: bool
    #: ``node.label`` (its name, else its id), read for every event of the node.
    label: str


@dataclass(frozen=True, slots=True)
class Plan:
    workflow: Workflow
    nodes: Mapping[str, Node]
    types: Mapping[str, NodeType]
    incoming: Mapping[str, tuple[Edge, ...]]
    outgoing: Mapping[str, tuple[Edge, ...]]
    #: Topological order.
    order: tuple[str, ...]
    end_nodes: tuple[str, ...]
    input_ports: Mapping[str, frozenset[str]]
    #: Nodes that run on their first fired input (``flow.merge`` mode first).
    first_input: Mapping[str, bool]
    configs: Mapping[str, CompiledValue]
    #: The config of nodes whose config holds no expression, ready to hand out.
    static_configs: Mapping[str, Mapping[str, Any]]
    filters: Mapping[str, CompiledValue]
    #: Per node, what running it reads (the same objects as the mappings above).
    steps: Mapping[str, Step]


#: Cached plans, with the registry and expression engine they were built with: holding
#: them keeps their ids (part of the keys) from being reused by other objects.
_Entry = tuple[Plan, NodeRegistry, ExpressionEngine]
_CACHE: OrderedDict[tuple[int, int, str, int], _Entry] = OrderedDict()
_CACHE_SIZE = 256
#: Plans of unsaved workflows (version 0), by the workflow object's id while it is cached.
_DRAFTS: OrderedDict[tuple[int, int, int], _Entry] = OrderedDict()
_DRAFTS_SIZE = 64


def plan_for(workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine) -> Plan:
    """The plan of ``workflow``, cached (see the module docstring).

    A saved version is looked up by (id, version) and still checked to be the same object,
    so that two stores holding different workflows under one id never share a plan.
    """
    cache: OrderedDict[Any, _Entry]
    if workflow.version <= 0:
        key: tuple[Any, ...] = (id(registry), id(expressions), id(workflow))
        cache, size = _DRAFTS, _DRAFTS_SIZE
    else:
        key = (id(registry), id(expressions), workflow.id, workflow.version)
        cache, size = _CACHE, _CACHE_SIZE
    entry = cache.get(key)
    # The entry holds the workflow, registry and engine: their ids are not reused meanwhile.
    if entry is not None and entry[0].workflow is workflow:
        cache.move_to_end(key)
        return entry[0]
    plan = _build(workflow, registry, expressions)
    cache[key] = (plan, registry, expressions)
    if len(cache) > size:
        cache.popitem(last=False)
    return plan


def clear_cache() -> None:
    """Forget every cached plan (tests; a registry whose types changed)."""
    _CACHE.clear()
    _DRAFTS.clear()


def _node_type(registry: NodeRegistry, node: Node) -> NodeType:
    """The registered type of ``node``, or the plainer type it hands for this node (an
    optional ``for_node(node)``: e.g. a wrapper that does nothing for nodes without its
    metadata returns the wrapped type, sparing a call per run)."""
    node_type = registry.get(node.type)
    for_node = getattr(node_type, "for_node", None)
    if for_node is not None:
        resolved: NodeType = for_node(node)
        return resolved
    return node_type


def _build(workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine) -> Plan:
    nodes = {node.id: node for node in workflow.nodes}
    types = {node.id: _node_type(registry, node) for node in workflow.nodes}
    incoming: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    outgoing: dict[str, list[Edge]] = {node_id: [] for node_id in nodes}
    for edge in workflow.edges:
        if edge.source not in nodes or edge.target not in nodes:
            missing = edge.source if edge.source not in nodes else edge.target
            raise ValueError(f"edge {edge.id!r} refers to unknown node {missing!r}")
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)
    order = _topological_order(list(nodes), outgoing)
    configs = {node_id: expressions.compile(dict(node.config)) for node_id, node in nodes.items()}
    static_configs = {
        node_id: dict(nodes[node_id].config) for node_id, c in configs.items() if c.is_static
    }
    first_input = {}
    for node_id, node_type in types.items():
        decide = node_type.manifest.runs_on_first_input
        first_input[node_id] = bool(decide(nodes[node_id].config)) if decide else False
    incoming_edges = {k: tuple(v) for k, v in incoming.items()}
    outgoing_edges = {k: tuple(v) for k, v in outgoing.items()}
    input_ports = {
        node_id: frozenset(t.manifest.input_port_names()) for node_id, t in types.items()
    }
    filters = {
        node.id: expressions.compile(node.filters)
        for node in workflow.nodes
        if node.filters is not None
    }
    steps = {
        node_id: Step(
            node=node,
            type=types[node_id],
            incoming=incoming_edges[node_id],
            outgoing=outgoing_edges[node_id],
            pure=types[node_id].manifest.pure,
            config=configs[node_id],
            static_config=static_configs.get(node_id),
            filters=filters.get(node_id),
            first_input=first_input[node_id],
            default_input=DEFAULT_PORT in input_ports[node_id],
            simple=node.filters is None and not node.needs_approval and node.retry is None,
            label=node.label,
        )
        for node_id, node in nodes.items()
    }
    return Plan(
        workflow=workflow,
        nodes=nodes,
        types=types,
        incoming=incoming_edges,
        outgoing=outgoing_edges,
        order=order,
        end_nodes=tuple(node_id for node_id in nodes if not outgoing[node_id]),
        input_ports=input_ports,
        first_input=first_input,
        configs=configs,
        static_configs=static_configs,
        filters=filters,
        steps=steps,
    )


def _topological_order(node_ids: list[str], outgoing: Mapping[str, list[Edge]]) -> tuple[str, ...]:
    indegree = dict.fromkeys(node_ids, 0)
    for edges in outgoing.values():
        for edge in edges:
            indegree[edge.target] += 1
    queue = [node_id for node_id in node_ids if indegree[node_id] == 0]
    order: list[str] = []
    while queue:
        node_id = queue.pop(0)
        order.append(node_id)
        for edge in outgoing[node_id]:
            indegree[edge.target] -= 1
            if indegree[edge.target] == 0:
                queue.append(edge.target)
    if len(order) < len(node_ids):
        raise GraphCycleError(find_cycle(node_ids, outgoing))
    return tuple(order)


def find_cycle(node_ids: list[str], outgoing: Mapping[str, list[Edge]]) -> list[str]:
    """The nodes of one cycle in order, first node repeated at the end; [] if none."""
    color = dict.fromkeys(node_ids, 0)
    stack: list[str] = []

    def visit(node_id: str) -> list[str] | None:
        color[node_id] = 1
        stack.append(node_id)
        for edge in outgoing.get(node_id, []):
            if color.get(edge.target) == 1:
                return [*stack[stack.index(edge.target) :], edge.target]
            if color.get(edge.target) == 0:
                found = visit(edge.target)
                if found:
                    return found
        stack.pop()
        color[node_id] = 2
        return None

    for node_id in node_ids:
        if color[node_id] == 0:
            found = visit(node_id)
            if found:
                return found
    return []
