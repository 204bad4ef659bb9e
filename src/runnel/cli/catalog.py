"""``runnel nodes``: the node types of the registry, as JSON or as a table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from runnel.engine.node import ConfigField, NodeManifest, PortSpec
from runnel.engine.registry import NodeRegistry
from runnel.model.values import to_json

__all__ = ["catalog", "catalog_table", "manifest_entry"]


def _port(port: PortSpec) -> dict[str, Any]:
    return {"name": port.name, "description": port.description}


def _field(spec: ConfigField) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type.value,
        "required": spec.required,
        "default": to_json(spec.default),
        "description": spec.description,
    }
    if spec.enum is not None:
        entry["enum"] = to_json(list(spec.enum))
    if spec.minimum is not None:
        entry["minimum"] = spec.minimum
    if spec.maximum is not None:
        entry["maximum"] = spec.maximum
    if spec.secret:
        entry["secret"] = True
    return entry


def manifest_entry(manifest: NodeManifest) -> dict[str, Any]:
    """One catalogue entry: type, category, description, aliases, ports and config fields."""
    return {
        "type": manifest.type,
        "category": manifest.category,
        "description": manifest.description,
        "aliases": list(manifest.aliases),
        "inputs": [_port(port) for port in manifest.inputs],
        "outputs": [_port(port) for port in manifest.outputs],
        "dynamic_inputs": manifest.dynamic_inputs,
        "dynamic_outputs": manifest.output_ports_for is not None,
        "side_effects": manifest.side_effects,
        "config": [_field(spec) for spec in manifest.config],
    }


def catalog(registry: NodeRegistry) -> list[dict[str, Any]]:
    """Every node type of ``registry``, sorted by type id."""
    return [manifest_entry(manifest) for manifest in registry.manifests()]


def catalog_table(registry: NodeRegistry) -> Table:
    """The catalogue as a Rich table."""
    table = Table(title=f"{len(registry)} node types")
    for column in ("type", "category", "inputs", "outputs", "config", "description"):
        table.add_column(column, overflow="fold")
    for entry in catalog(registry):
        table.add_row(
            entry["type"] + (f"\n({', '.join(entry['aliases'])})" if entry["aliases"] else ""),
            entry["category"],
            _names(entry["inputs"], "any" if entry["dynamic_inputs"] else ""),
            _names(entry["outputs"], "per config" if entry["dynamic_outputs"] else ""),
            _names(entry["config"], ""),
            entry["description"],
        )
    return table


def _names(items: list[dict[str, Any]], extra: str) -> str:
    names = [item["name"] for item in items]
    if extra:
        names.append(f"({extra})")
    return ", ".join(names)
