"""Python clients of runnel's APIs (no server module imported)."""

from __future__ import annotations

__all__: list[str] = []
