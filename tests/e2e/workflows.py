"""Small Flow Engine workflow documents for the tests."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["connection", "document", "node", "setter"]


def node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "node_type": node_type, "config": config}


def setter(node_id: str, **values: Any) -> dict[str, Any]:
    """A ``transform.set`` node that adds ``values`` to its input object."""
    return node(node_id, "transform.set", values={"type": "Json", "value": values})


def connection(
    source: str, target: str, source_port: str = "value", target_port: str = "value"
) -> dict[str, Any]:
    return {
        "from_node": source,
        "from_port": source_port,
        "to_node": target,
        "to_port": target_port,
    }


def document(
    workflow_id: str,
    nodes: list[dict[str, Any]],
    connections: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A workflow; without ``connections`` the nodes form a chain through ``value``."""
    if connections is None:
        connections = [connection(a["id"], b["id"]) for a, b in itertools.pairwise(nodes)]
    return {
        "id": workflow_id,
        "name": workflow_id,
        "description": "",
        "nodes": nodes,
        "connections": connections,
        **fields,
    }
