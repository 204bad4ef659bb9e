"""Flowork engine tokens: ``dev_engine_`` and 32 hex characters (16 random bytes).

A token is shown once, when it is made; the store keeps its SHA-256
(``runnel.auth.tokens.token_digest``). Tokens are random and long, so a plain digest is
safe to keep and lets a token find its engine with one indexed read; the digests are then
compared in constant time (``digests_match``).
"""

from __future__ import annotations

import re
import secrets
from typing import Final

__all__ = ["ENGINE_TOKEN_PREFIX", "looks_like_engine_token", "new_engine_token"]

ENGINE_TOKEN_PREFIX: Final = "dev_engine_"
_TOKEN: Final = re.compile(re.escape(ENGINE_TOKEN_PREFIX) + r"[0-9a-f]{32}")


def new_engine_token() -> str:
    """A fresh engine token."""
    return ENGINE_TOKEN_PREFIX + secrets.token_hex(16)


def looks_like_engine_token(value: object) -> bool:
    """Whether ``value`` has the shape of an engine token (cheap, before any lookup)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None
