"""Rendering SQL texts once per dialect, in the driver's own parameter style.

The repositories write their statements as text with ``:name`` parameters, in SQL that
SQLite (3.35+) and PostgreSQL both speak, and render each once per store (``:name`` for
sqlite3, ``%(name)s`` for psycopg), as ``runnel.store.statements`` does for the hot path.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Dialect, text

__all__ = ["renderer"]


def renderer(dialect: Dialect) -> Callable[[str], str]:
    """A function rendering one SQL text for ``dialect``."""

    def render(sql: str) -> str:
        return str(text(sql.strip()).compile(dialect=dialect))

    return render
