"""The catalogue of node types, looked up by type id or alias."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator

from runnel.engine.node import NodeManifest, NodeType

__all__ = ["BUILTIN_FAMILIES", "NodeRegistry", "UnknownNodeType", "default_registry"]

#: Modules of ``runnel.nodes`` that hold the built-in families. Loaded by name so that the
#: engine never imports the nodes package statically (nodes import the engine's protocol).
BUILTIN_FAMILIES = (
    "runnel.nodes.http",
    "runnel.nodes.debug",
    "runnel.nodes.transform",
    "runnel.nodes.logic",
    "runnel.nodes.flow",
    "runnel.nodes.data",
    "runnel.nodes.human",
    "runnel.nodes.notify",
    "runnel.nodes.trigger",
)


class UnknownNodeType(LookupError):
    def __init__(self, name: str, suggestions: tuple[str, ...]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown node type {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions


class NodeRegistry:
    def __init__(self, node_types: Iterable[NodeType] = ()) -> None:
        self._by_type: dict[str, NodeType] = {}
        self._by_name: dict[str, NodeType] = {}
        for node_type in node_types:
            self.register(node_type)

    def register(self, node_type: NodeType) -> None:
        manifest = node_type.manifest
        for name in (manifest.type, *manifest.aliases):
            existing = self._by_name.get(name)
            if existing is not None and existing is not node_type:
                raise ValueError(f"node type name {name!r} is taken by {existing.manifest.type}")
        self._by_type[manifest.type] = node_type
        for name in (manifest.type, *manifest.aliases):
            self._by_name[name] = node_type

    def get(self, name: str) -> NodeType:
        """The node type registered under ``name`` (a type id or an alias)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNodeType(name, self.suggest(name)) from None

    def find(self, name: str) -> NodeType | None:
        return self._by_name.get(name)

    def canonical(self, name: str) -> str:
        """The type id for a type id or an alias."""
        return self.get(name).manifest.type

    def suggest(self, name: str, limit: int = 3) -> tuple[str, ...]:
        matches = difflib.get_close_matches(name, list(self._by_name), n=limit * 2, cutoff=0.5)
        seen: list[str] = []
        for match in matches:
            type_id = self._by_name[match].manifest.type
            if type_id not in seen:
                seen.append(type_id)
        return tuple(seen[:limit])

    def manifests(self) -> list[NodeManifest]:
        return sorted((t.manifest for t in self._by_type.values()), key=lambda m: m.type)

    def __iter__(self) -> Iterator[NodeType]:
        return iter(self._by_type.values())

    def __len__(self) -> int:
        return len(self._by_type)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def default_registry() -> NodeRegistry:
    """A registry with every built-in node type (each family module exposes ``NODE_TYPES``)."""
    registry = NodeRegistry()
    for module_name in BUILTIN_FAMILIES:
        module = importlib.import_module(module_name)
        for node_type in module.NODE_TYPES:
            registry.register(node_type)
    return registry
