"""JSON responses encoded once with orjson (stdlib ``json`` for what orjson refuses)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response

__all__ = ["JsonResponse", "dumps"]

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON. Integers beyond 64 bits and other values orjson
    refuses go through the stdlib; non-finite floats become ``null``."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(
            _finite(value), ensure_ascii=False, separators=(",", ":"), default=str
        ).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class JsonResponse(Response):
    """A JSON response; ``content`` is encoded once with ``dumps``."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, self.media_type, background)

    def render(self, content: Any) -> bytes:
        return dumps(content)
