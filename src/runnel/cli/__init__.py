"""The ``runnel`` command line (Typer + Rich); the entry point is ``runnel.cli.main:main``."""

from __future__ import annotations

__all__: list[str] = []
