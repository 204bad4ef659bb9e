"""Flow Engine typed values: ``{"type": T, "value": v}``.

``decode`` turns a typed value into plain Python (``Bytes`` into ``bytes``, everything else
into JSON types) and accepts plain JSON as it is; ``encode`` is its inverse. A dict is read as
a typed value only when it is exactly ``{"type": <a known T>[, "value": ...]}``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "TYPE_NAMES",
    "TypedValueError",
    "decode",
    "describe_kind",
    "encode",
    "is_typed",
    "to_json",
]

TYPE_NAMES: Final = frozenset(
    {"Null", "Bool", "Number", "String", "Bytes", "Json", "Array", "Object"}
)


class TypedValueError(ValueError):
    """A typed value whose ``value`` does not fit its ``type``; ``path`` says where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def is_typed(obj: object) -> bool:
    if not isinstance(obj, dict) or "type" not in obj or len(obj) > 2:
        return False
    if len(obj) == 2 and "value" not in obj:
        return False
    return isinstance(obj["type"], str) and obj["type"] in TYPE_NAMES


def decode(obj: Any, path: str = "") -> Any:
    """Typed value (or plain JSON) -> plain Python value."""
    if not is_typed(obj):
        return obj
    kind = obj["type"]
    if kind == "Null":
        return None
    if "value" not in obj:
        raise TypedValueError(path, f"a {kind} value needs a 'value'")
    value = obj["value"]
    if kind == "Bool":
        if not isinstance(value, bool):
            raise TypedValueError(path, f"Bool expects true or false, got {describe_kind(value)}")
        return value
    if kind == "Number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypedValueError(path, f"Number expects a JSON number, got {describe_kind(value)}")
        return value
    if kind == "String":
        if not isinstance(value, str):
            raise TypedValueError(path, f"String expects a string, got {describe_kind(value)}")
        return value
    if kind == "Bytes":
        if not isinstance(value, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
        ):
            raise TypedValueError(path, "Bytes expects an array of numbers 0..255")
        return bytes(value)
    if kind == "Json":
        return value
    if kind == "Array":
        if not isinstance(value, list):
            raise TypedValueError(path, f"Array expects an array, got {describe_kind(value)}")
        return [decode(item, f"{path}[{i}]") for i, item in enumerate(value)]
    # Object
    if not isinstance(value, dict):
        raise TypedValueError(path, f"Object expects an object, got {describe_kind(value)}")
    return {key: decode(item, f"{path}.{key}" if path else key) for key, item in value.items()}


def encode(value: Any) -> dict[str, Any]:
    """Plain Python value -> typed value."""
    if value is None:
        return {"type": "Null"}
    if isinstance(value, bool):
        return {"type": "Bool", "value": value}
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return {"type": "Null"}
        return {"type": "Number", "value": value}
    if isinstance(value, str):
        return {"type": "String", "value": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Bytes", "value": list(bytes(value))}
    if isinstance(value, list | tuple | set | frozenset):
        return {"type": "Array", "value": [encode(item) for item in value]}
    if isinstance(value, Mapping):
        return {"type": "Object", "value": {str(k): encode(v) for k, v in value.items()}}
    # Anything else (a date, a decimal...) travels as its text.
    return {"type": "String", "value": str(value)}


def to_json(value: Any) -> Any:
    """Any runtime value -> plain JSON (bytes become base64 text, tuples lists)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    return str(value)


def describe_kind(value: object) -> str:
    """How an error message names the JSON kind of ``value`` ("a string", "null"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
