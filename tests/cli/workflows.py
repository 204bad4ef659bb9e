"""Small Flow Engine workflows written into ``tmp_path`` by the CLI tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["connection", "node", "workflow", "write"]


def node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    """A Flow Engine node with plain-JSON config."""
    return {"id": node_id, "node_type": node_type, "config": config}


def connection(source: str, source_port: str, target: str, target_port: str) -> dict[str, Any]:
    """A Flow Engine connection."""
    return {
        "from_node": source,
        "from_port": source_port,
        "to_node": target,
        "to_port": target_port,
    }


def workflow(
    nodes: list[dict[str, Any]],
    connections: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A Flow Engine workflow document."""
    return {
        "id": "test",
        "name": "test",
        "nodes": nodes,
        "connections": connections or [],
        "triggers": [],
        "settings": {"max_parallel_nodes": 10, "on_error": "StopWorkflow", **settings},
    }


def write(directory: Path, document: Any, name: str = "workflow.json") -> Path:
    """Write ``document`` as JSON into ``directory``; returns the path."""
    path = directory / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
