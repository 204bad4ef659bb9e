"""A workflow prepared for execution: adjacency, order, compiled config. Built once per version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runnel.engine.expressions import CompiledValue, ExpressionEngine
from runnel.engine.node import NodeType
from runnel.engine.registry import NodeRegistry
from runnel.model.workflow import Edge, Node, Workflow

__all__ = ["GraphCycleError", "Plan", "plan_for"]


class GraphCycleError(ValueError):
    def __init__(self, nodes: list[str]) -> None:
        super().__init__(f"the graph has a cycle through {' -> '.join(nodes)}")
        self.nodes = nodes


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


_CACHE: OrderedDict[tuple[int, str, int], Plan] = OrderedDict()
_CACHE_SIZE = 256


def plan_for(workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine) -> Plan:
    """The plan of ``workflow``; saved versions (version > 0) are cached, being immutable."""
    if workflow.version <= 0:
        return _build(workflow, registry, expressions)
    key = (id(registry), workflow.id, workflow.version)
    plan = _CACHE.get(key)
    if plan is not None and plan.workflow is workflow:
        _CACHE.move_to_end(key)
        return plan
    plan = _build(workflow, registry, expressions)
    _CACHE[key] = plan
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return plan


def _build(workflow: Workflow, registry: NodeRegistry, expressions: ExpressionEngine) -> Plan:
    nodes = {node.id: node for node in workflow.nodes}
    types = {node.id: registry.get(node.type) for node in workflow.nodes}
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
    return Plan(
        workflow=workflow,
        nodes=nodes,
        types=types,
        incoming={k: tuple(v) for k, v in incoming.items()},
        outgoing={k: tuple(v) for k, v in outgoing.items()},
        order=order,
        end_nodes=tuple(node_id for node_id in nodes if not outgoing[node_id]),
        input_ports={
            node_id: frozenset(t.manifest.input_port_names()) for node_id, t in types.items()
        },
        first_input=first_input,
        configs=configs,
        static_configs=static_configs,
        filters={
            node.id: expressions.compile(node.filters)
            for node in workflow.nodes
            if node.filters is not None
        },
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
