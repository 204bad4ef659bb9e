"""The running runnel's version."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

__all__ = ["runnel_version"]


@cache
def runnel_version() -> str:
    """The installed package's version (``0+unknown`` from a never-installed tree)."""
    try:
        return version("runnel")
    except PackageNotFoundError:
        return "0+unknown"
