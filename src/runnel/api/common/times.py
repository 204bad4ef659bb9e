"""Timestamps on the wire: one format for every dialect."""

from __future__ import annotations

import math
import time

__all__ = ["iso_utc", "iso_utc_or_none"]


def iso_utc(timestamp: float) -> str:
    """Unix seconds -> ``2024-01-15T10:30:00.005Z`` (JavaScript's ``toISOString``).

    Milliseconds are cut, not rounded, so that a time read back as a ``since`` filter still
    includes what it came from."""
    total_ms = math.floor(timestamp * 1000)
    seconds, ms = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def iso_utc_or_none(timestamp: float | None) -> str | None:
    """``iso_utc``, or None for no time."""
    return None if timestamp is None else iso_utc(timestamp)
