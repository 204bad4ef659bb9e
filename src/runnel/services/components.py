"""Flowork component manifests (``request_components_list``) and port names, from the registry.

A component is a built-in node type, listed under its Flowork module id when it has one
(``debug_popup_module``), else under its type id (``logic.if``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from runnel.engine.node import ConfigField, FieldType, NodeManifest
from runnel.engine.registry import NodeRegistry
from runnel.model.flowork import ERROR_PORT, FLOWORK_MODULE_IDS, ModulePorts, PortLookup
from runnel.model.values import to_json
from runnel.services.errors import InvalidInput, ProblemDetail

__all__ = [
    "COMPONENT_KINDS",
    "COMPONENT_VERSION",
    "component_id",
    "component_manifest",
    "component_manifests",
    "flowork_ports",
]

#: The ``component_type`` values of ``request_components_list``.
COMPONENT_KINDS: Final = ("modules", "plugins", "triggers", "tools")
#: The version every built-in component reports.
COMPONENT_VERSION: Final = "1.0.0"
_AUTHOR: Final = "runnel"
_TRIGGER: Final = "TRIGGER"
#: ConfigField types as Flowork property types.
_PROPERTY_TYPES: Final[Mapping[FieldType, str]] = {
    FieldType.STRING: "string",
    FieldType.NUMBER: "float",
    FieldType.INTEGER: "integer",
    FieldType.BOOLEAN: "boolean",
    FieldType.OBJECT: "dict",
    FieldType.ARRAY: "list",
    FieldType.ANY: "string",
}


def component_manifests(registry: NodeRegistry, kind: str) -> list[dict[str, Any]]:
    """The manifests of one component kind, sorted by id.

    ``triggers``: the trigger node types; ``modules``: every other node type; ``plugins``
    and ``tools``: always empty (runnel has no plug-ins or AI tools yet). Any other kind:
    InvalidInput.
    """
    if not isinstance(kind, str) or kind not in COMPONENT_KINDS:
        shown = repr(kind) if isinstance(kind, str) else type(kind).__name__
        message = f"unknown component_type {shown}; expected one of {', '.join(COMPONENT_KINDS)}"
        raise InvalidInput(message, [ProblemDetail(message, "component_type")])
    if kind in ("plugins", "tools"):
        return []
    triggers = kind == "triggers"
    manifests = [
        component_manifest(manifest)
        for manifest in registry.manifests()
        if (manifest.kind == _TRIGGER) == triggers
    ]
    return sorted(manifests, key=lambda item: str(item["id"]))


def component_id(manifest: NodeManifest) -> str:
    """The Flowork module id among the aliases, else the type id."""
    for alias in manifest.aliases:
        if alias in FLOWORK_MODULE_IDS:
            return alias
    return manifest.type


def component_manifest(manifest: NodeManifest) -> dict[str, Any]:
    """One node type as a Flowork component manifest."""
    outputs = [
        {"name": port.name, "display_name": _label(port.name), "tooltip": port.description}
        for port in manifest.outputs
    ]
    # Every node can route its failure on the error port (on_error: continue).
    outputs.append(
        {
            "name": ERROR_PORT,
            "display_name": "Error",
            "tooltip": "The failure {error, failed_node_id} when the node fails",
        }
    )
    return {
        "id": component_id(manifest),
        "name": _label(manifest.type.split(".", 1)[-1]),
        "version": COMPONENT_VERSION,
        "author": _AUTHOR,
        "description": manifest.description,
        "type": manifest.kind,
        "properties": [_property(field) for field in manifest.config],
        "output_ports": outputs,
        "output_schema": [
            {"name": port.name, "type": "any", "description": port.description}
            for port in manifest.outputs
        ],
        "icon_file": None,
        # runnel additions: what the node is in the canonical model.
        "node_type": manifest.type,
        "aliases": list(manifest.aliases),
    }


def _property(field: ConfigField) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "id": field.name,
        "type": "enum" if field.enum is not None else _PROPERTY_TYPES[field.type],
        "label": _label(field.name),
        "description": field.description,
        "default": to_json(field.default),
    }
    if field.enum is not None:
        prop["options"] = [to_json(option) for option in field.enum]
    if field.secret:
        prop["secret"] = True
    return prop


def _label(name: str) -> str:
    text = name.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:]


def flowork_ports(registry: NodeRegistry) -> PortLookup:
    """The ``ports`` of ``runnel.model.flowork.workflow_from_flowork`` for ``registry``: a
    module id (type id or alias) -> its input and output port names (None if unknown)."""

    def lookup(module_id: str, config: Mapping[str, Any]) -> ModulePorts | None:
        node_type = registry.find(module_id)
        if node_type is None:
            return None
        manifest = node_type.manifest
        try:
            outputs = manifest.output_port_names(config)
        except Exception:  # a config the port function rejects: validation reports it
            outputs = tuple(port.name for port in manifest.outputs)
        return ModulePorts(inputs=manifest.input_port_names(), outputs=tuple(outputs))

    return lookup
