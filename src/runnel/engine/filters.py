"""flow8 filters: AND/OR groups of conditions deciding whether a node runs.

Accepted shapes (values already rendered, so operands are plain values):

- a list of conditions or groups: all must hold
- ``{"and": [...]}``, ``{"or": [...]}``, or ``{"op": "and"|"or", "conditions": [...]}``
- a condition: ``{"field"|"left": a, "operator"|"op": name, "value"|"right": b}``; operators
  ``eq ne gt gte lt lte contains not_contains starts_with ends_with in not_in exists
  not_exists empty not_empty matches`` (also ``== != > >= < <=``)
- a bare boolean
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["OPERATORS", "FilterError", "matches"]


class FilterError(ValueError):
    """A filter whose shape or operator is not understood."""


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(left: Any, right: Any) -> bool:
        try:
            return op(left, right)
        except TypeError:
            return False

    return check


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str):
        return isinstance(right, str) and right in left
    if isinstance(left, Mapping | list | tuple):
        return right in left
    return False


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | Mapping) and len(value) == 0)


OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "contains": _contains,
    "not_contains": lambda a, b: not _contains(a, b),
    "starts_with": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b),
    "ends_with": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b),
    "in": lambda a, b: _contains(b, a),
    "not_in": lambda a, b: not _contains(b, a),
    "exists": lambda a, _b: a is not None,
    "not_exists": lambda a, _b: a is None,
    "empty": lambda a, _b: _empty(a),
    "not_empty": lambda a, _b: not _empty(a),
    "matches": lambda a, b: isinstance(a, str) and isinstance(b, str) and bool(re.search(b, a)),
}
_SYMBOLS = {"==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def matches(spec: Any) -> bool:
    """Whether the (rendered) filter ``spec`` holds. ``None`` or empty means no filter."""
    if spec is None:
        return True
    if isinstance(spec, bool):
        return spec
    if isinstance(spec, list | tuple):
        return all(matches(item) for item in spec)
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a list, an object or a boolean, not {spec!r}")
    if "and" in spec:
        return all(matches(item) for item in _items(spec["and"]))
    if "or" in spec:
        return any(matches(item) for item in _items(spec["or"]))
    if "conditions" in spec or "rules" in spec:
        items = _items(spec.get("conditions", spec.get("rules")))
        combine = str(spec.get("op", spec.get("operator", "and"))).lower()
        if combine not in {"and", "or"}:
            raise FilterError(f"a filter group combines with 'and' or 'or', not {combine!r}")
        results = (matches(item) for item in items)
        return any(results) if combine == "or" else all(results)
    return _condition(spec)


def _items(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise FilterError("a filter group holds a list of conditions")
    return list(value)


def _condition(spec: Mapping[str, Any]) -> bool:
    name = str(spec.get("operator", spec.get("op", "eq")))
    name = _SYMBOLS.get(name, name).lower()
    op = OPERATORS.get(name)
    if op is None:
        raise FilterError(f"unknown filter operator {name!r}; known: {', '.join(OPERATORS)}")
    left = spec.get("field", spec.get("left"))
    right = spec.get("value", spec.get("right"))
    return op(left, right)
