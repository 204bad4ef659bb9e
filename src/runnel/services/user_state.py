"""Per-user state: small JSON values under keys, for GUI preferences.

Some keys have a shape: ``favorite_presets`` and ``favorite_components`` are arrays of
strings (validated, size-limited, duplicates dropped) and read as ``[]`` until set. Any
other key holds any JSON value up to ``MAX_VALUE_BYTES``; a user has at most ``MAX_KEYS``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore
from runnel.store.errors import ConflictError

__all__ = [
    "MAX_FAVORITES",
    "MAX_KEYS",
    "MAX_VALUE_BYTES",
    "UserStateService",
    "check_state_key",
]

MAX_KEYS: Final = 50
MAX_VALUE_BYTES: Final = 64 * 1024
MAX_FAVORITES: Final = 500
MAX_FAVORITE_CHARS: Final = 256
_KEY: Final = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True, slots=True)
class _StringList:
    """A key holding a list of distinct strings."""

    max_items: int
    max_chars: int

    def default(self) -> Any:
        return []

    def check(self, key: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise _invalid(key, "must be an array of strings")
        if len(value) > self.max_items:
            raise _invalid(key, f"must have at most {self.max_items} items")
        kept: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise _invalid(f"{key}[{index}]", "must be a non-empty string")
            if len(item) > self.max_chars or any(ord(ch) < 32 for ch in item):
                raise _invalid(
                    f"{key}[{index}]",
                    f"must be at most {self.max_chars} characters, no control characters",
                )
            if item not in kept:
                kept.append(item)
        return kept


#: The keys with a shape; every other key holds any JSON.
_SHAPED: Final = {
    "favorite_presets": _StringList(MAX_FAVORITES, MAX_FAVORITE_CHARS),
    "favorite_components": _StringList(MAX_FAVORITES, MAX_FAVORITE_CHARS),
}


def check_state_key(key: object) -> str:
    """The one rule for state keys: 1 to 64 of ``a-z``, ``0-9`` and ``_``."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise _invalid("key", "must be 1 to 64 of a-z, 0-9 and _")
    return key


class UserStateService:
    def __init__(self, store: SqlStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def get(self, user_id: str, key: str) -> Any:
        """The value under ``key``: a shaped key's default when unset, ``NotFound`` for
        another unset key."""
        clean = check_state_key(key)
        text = await self.store.get_user_state(user_id, clean)
        if text is None:
            shape = _SHAPED.get(clean)
            if shape is None:
                raise NotFound("user state key", clean)
            return shape.default()
        return json.loads(text)

    async def put(self, user_id: str, key: str, value: Any) -> Any:
        """Replace the value under ``key``; returns it as stored."""
        clean = check_state_key(key)
        shape = _SHAPED.get(clean)
        stored = shape.check(clean, value) if shape is not None else value
        text = json.dumps(stored, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
            raise _invalid(clean, f"must be at most {MAX_VALUE_BYTES} bytes of JSON")
        try:
            saved = await self.store.put_user_state(
                user_id, clean, text, self._clock(), max_keys=MAX_KEYS
            )
        except ConflictError:
            raise NotFound("user", user_id) from None
        if not saved:
            raise Conflict(f"A user may keep at most {MAX_KEYS} state keys; delete one first")
        return stored

    async def delete(self, user_id: str, key: str) -> None:
        clean = check_state_key(key)
        if not await self.store.delete_user_state(user_id, clean):
            raise NotFound("user state key", clean)


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid user state: {where} {problem}", [ProblemDetail(problem, where)])
