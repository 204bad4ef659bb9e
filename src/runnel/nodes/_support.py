"""Helpers shared by the built-in node families: reading config, truthiness, simulate mode.

Conventions every built-in node follows (so that users can predict them):

- A config key that is absent or ``None`` takes the field's default. (``None`` counts as
  unset because an expression that finds nothing renders to ``None``.)
- Where a value can come both from config and from an input port of the same name (the
  ``url`` of ``http.request``, the ``message`` of ``debug.log``), the config wins when it is
  set and the input port is the fallback: config is the explicit, per-node choice and can
  always refer to the input with ``{{ $input.<port> }}``.
- Side-effect nodes return ``config["pinned_output"]`` in simulate mode when it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import orjson

from runnel.engine.node import ConfigField, FieldType, NodeContext, NodeOutput
from runnel.engine.signals import NodeFailure
from runnel.model.values import to_json

__all__ = [
    "FALSE_STRINGS",
    "PINNED_OUTPUT",
    "as_int",
    "as_mapping",
    "as_text",
    "dump_json",
    "option",
    "param",
    "parse_json",
    "pinned_output",
    "truthy",
]

#: Strings that mean false (compared after stripping and lower-casing). A rendered
#: condition is often text (``"{{ a }} == b"`` inside a longer string, a form field, an
#: environment variable), so ``"false"`` must not be true just because it is non-empty.
FALSE_STRINGS: Final = frozenset({"", "0", "false", "no", "off", "null", "none"})

#: The config field every side-effect node declares, so that validation accepts it.
PINNED_OUTPUT: Final = ConfigField(
    "pinned_output",
    FieldType.OBJECT,
    description="Simulate mode: the outputs to return instead of running (port -> value).",
)


def truthy(value: Any) -> bool:
    """Python truthiness, except that the strings in ``FALSE_STRINGS`` are false."""
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_STRINGS
    return bool(value)


def option(ctx: NodeContext, field: ConfigField) -> Any:
    """The config value of ``field``, or its default when absent or ``None``."""
    value = ctx.config.get(field.name)
    return field.default if value is None else value


def param(ctx: NodeContext, name: str, default: Any = None) -> Any:
    """Config ``name`` when set, else input port ``name``, else ``default``."""
    value = ctx.config.get(name)
    if value is not None:
        return value
    return ctx.inputs.get(name, default)


def as_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an integer (ints, integral floats and numeric strings are accepted)."""
    result: int | None = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            result = None
    if result is None:
        raise NodeFailure(f"config {name!r} must be an integer, got {value!r}", kind="config")
    if minimum is not None and result < minimum:
        raise NodeFailure(f"config {name!r} must be at least {minimum}, got {result}", "config")
    if maximum is not None and result > maximum:
        raise NodeFailure(f"config {name!r} must be at most {maximum}, got {result}", "config")
    return result


def as_mapping(value: Any, name: str) -> Mapping[str, Any]:
    """``value`` when it is an object, else a config failure naming ``name``."""
    if isinstance(value, Mapping):
        return value
    raise NodeFailure(
        f"config {name!r} must be an object, got {type(value).__name__}", kind="config"
    )


def as_text(value: Any) -> str:
    """A readable one-line text for logs and messages: strings as they are, else JSON."""
    if isinstance(value, str):
        return value
    return dump_json(value)


def pinned_output(ctx: NodeContext) -> NodeOutput | None:
    """In simulate mode, the ``pinned_output`` config (port -> value) if given."""
    if not ctx.simulate:
        return None
    pinned = ctx.config.get(PINNED_OUTPUT.name)
    if pinned is None:
        return None
    if not isinstance(pinned, Mapping) or not all(isinstance(k, str) for k in pinned):
        raise NodeFailure(
            "config 'pinned_output' must be an object of output port -> value", kind="config"
        )
    return dict(pinned)


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text; raises ``json.JSONDecodeError`` (with its position) when invalid.

    The standard library, not orjson: orjson silently turns integers beyond 64 bits into
    floats (ids from some APIs are that long), and parsing is not on a hot path.
    """
    return json.loads(text)


def dump_json(value: Any, indent: int | None = None, *, sort_keys: bool = False) -> str:
    """``value`` as JSON text: compact unless ``indent`` is given; never fails.

    Values JSON cannot hold become their nearest JSON form first (bytes as base64, tuples
    and sets as arrays, non-finite floats as null, other objects as text).
    """
    if indent is None:
        option = orjson.OPT_SORT_KEYS if sort_keys else 0
        try:
            return orjson.dumps(value, option=option).decode()
        except TypeError:  # bytes, big integers, non-string keys...
            pass
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        to_json(value),
        indent=indent,
        sort_keys=sort_keys,
        ensure_ascii=False,
        separators=separators,
    )
