"""Data transforms: ``transform.json_parse``, ``transform.json_stringify``, ``transform.set``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    NodeType,
    PortSpec,
)
from runnel.engine.signals import NodeFailure
from runnel.nodes._support import as_int, dump_json, param, parse_json, truthy

__all__ = ["NODE_TYPES", "JsonParse", "JsonStringify", "SetValues", "set_values"]

_JSON_TEXT = ConfigField(
    "json", FieldType.STRING, description="JSON text to parse (else the `json` input)."
)
_VALUE = ConfigField(
    "value", FieldType.ANY, description="Value to serialise (else the `value` input)."
)
_INDENT = ConfigField(
    "indent",
    FieldType.INTEGER,
    minimum=0,
    maximum=16,
    description="Spaces per level; compact JSON when unset.",
)
_SORT_KEYS = ConfigField("sort_keys", FieldType.BOOLEAN, default=False)
_VALUES = ConfigField(
    "values",
    FieldType.OBJECT,
    default={},
    description='Keys to set -> values; a dotted key such as "a.b" sets a nested key.',
)
_KEEP_INPUT = ConfigField(
    "keep_input",
    FieldType.BOOLEAN,
    default=True,
    description="Start from the input object (true) or from an empty object (false).",
)

#: How much of the text around a JSON syntax error a failure message shows.
_EXCERPT = 20


class JsonParse:
    """Parse JSON text into a value."""

    manifest = NodeManifest(
        type="transform.json_parse",
        category="transform",
        description="Parse JSON text into a value",
        aliases=("json_parse",),
        config=(_JSON_TEXT,),
        inputs=(PortSpec("json", "JSON text (string or bytes)"),),
        outputs=(PortSpec("parsed", "The parsed value"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``parsed``; invalid JSON fails with its line, column and offset."""
        text = param(ctx, "json")
        if text is None:
            raise NodeFailure("no JSON text: set config 'json' or connect the 'json' input")
        if not isinstance(text, str | bytes | bytearray):
            raise NodeFailure(
                f"transform.json_parse expects JSON text, got {type(text).__name__}", kind="type"
            )
        try:
            return {"parsed": parse_json(bytes(text) if isinstance(text, bytearray) else text)}
        except json.JSONDecodeError as exc:
            start = max(exc.pos - _EXCERPT, 0)
            near = exc.doc[start : exc.pos + _EXCERPT]
            raise NodeFailure(
                f"invalid JSON at line {exc.lineno}, column {exc.colno} (char {exc.pos}): "
                f"{exc.msg}; near {near!r}",
                kind="json",
                line=exc.lineno,
                column=exc.colno,
                position=exc.pos,
            ) from exc
        except UnicodeDecodeError as exc:
            raise NodeFailure(
                f"invalid JSON: bytes are not UTF-8 text (at byte {exc.start})", kind="json"
            ) from exc


class JsonStringify:
    """Serialise a value as JSON text."""

    manifest = NodeManifest(
        type="transform.json_stringify",
        category="transform",
        description="Serialise a value as JSON text",
        aliases=("json_stringify",),
        config=(_VALUE, _INDENT, _SORT_KEYS),
        inputs=(PortSpec("value", "Any value"),),
        outputs=(PortSpec("json", "JSON text"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``json``: compact unless ``indent`` is set; bytes become base64 text."""
        raw_indent = ctx.config.get(_INDENT.name)
        indent = None if raw_indent is None else as_int(raw_indent, "indent", minimum=0, maximum=16)
        sort_keys = truthy(ctx.config.get(_SORT_KEYS.name, False))
        return {"json": dump_json(param(ctx, "value"), indent, sort_keys=sort_keys)}


class SetValues:
    """Set keys on a copy of the input object."""

    manifest = NodeManifest(
        type="transform.set",
        category="transform",
        description="Set keys on an object",
        aliases=("set",),
        config=(_VALUES, _KEEP_INPUT),
        inputs=(PortSpec("value", "An object (anything else counts as {})"),),
        outputs=(PortSpec("value", "A copy of the input with the values set"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``value`` with the new object; the input itself is never changed."""
        config = ctx.config
        keep = config.get("keep_input")
        values = config.get("values")
        if values is not None and type(values) is not dict and not isinstance(values, Mapping):
            raise NodeFailure(
                f"config 'values' must be an object, got {type(values).__name__}", "config"
            )
        source = ctx.inputs.get("value") if keep is None or truthy(keep) else None
        return {"value": set_values(source, values or {})}


def set_values(source: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``source`` (``{}`` unless an object) with ``values`` set.

    The copy is shallow: a chain of set nodes is a hot path. Only the objects along a dotted
    path are copied (once each) before they are changed, so neither the input nor the
    config is ever mutated.
    """
    out: dict[str, Any] = (
        dict(source) if type(source) is dict or isinstance(source, Mapping) else {}
    )
    copied: set[int] | None = None
    for key, value in values.items():
        if "." not in key:
            out[key] = value
            continue
        if copied is None:
            copied = set()
        _set_path(out, key, value, copied)
    return out


def _set_path(out: dict[str, Any], key: str, value: Any, copied: set[int]) -> None:
    parts = key.split(".")
    if not all(parts):
        raise NodeFailure(f"config 'values': invalid key path {key!r}", kind="config")
    target = out
    for part in parts[:-1]:
        child = target.get(part)
        if not (isinstance(child, dict) and id(child) in copied):
            # Copy before writing: the object may be shared with the input or the config.
            child = dict(child) if isinstance(child, Mapping) else {}
            copied.add(id(child))
            target[part] = child
        target = child
    target[parts[-1]] = value


NODE_TYPES: tuple[NodeType, ...] = (JsonParse(), JsonStringify(), SetValues())
