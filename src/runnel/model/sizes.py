"""Payload sizes, as the bytes of their JSON encoding (Flowork's payload_size metrics)."""

from __future__ import annotations

from typing import Any

import orjson

from runnel.model.values import to_json

__all__ = ["json_size"]


def json_size(value: Any) -> int:
    """Bytes of ``value`` encoded as compact JSON (bytes counted as base64 text)."""
    try:
        return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        return len(orjson.dumps(to_json(value)))
