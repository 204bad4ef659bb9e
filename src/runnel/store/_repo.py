"""What the flow8 repository mixins share: SQL rendered once per dialect, and the store's
read and write entry points.

Each mixin writes its statements as text with ``:name`` parameters (the same row dicts feed
sqlite3 and psycopg, see ``connect.py``); ``_q`` renders one for the store's dialect the
first time it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text

from runnel.store.reading import Reader

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine.interfaces import DBAPICursor

__all__ = ["RepositoryMixin", "escape_like", "float_or_none"]

_T = TypeVar("_T")


class RepositoryMixin:
    """Base of the repository mixins of ``SqlStore``."""

    if TYPE_CHECKING:
        # Provided by SqlStore.
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _rendered_sql: dict[str, str] | None = None

    def _q(self, sql: str) -> str:
        """``sql`` rendered for this store's driver (cached by its text)."""
        cache = self._rendered_sql
        if cache is None:
            cache = self._rendered_sql = {}
        rendered = cache.get(sql)
        if rendered is None:
            rendered = str(text(sql.strip()).compile(dialect=self._writer_engine.dialect))
            cache[sql] = rendered
        return rendered

    @property
    def _is_postgres(self) -> bool:
        return self._writer_engine.dialect.name == "postgresql"

    async def _fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        statement = self._q(sql)
        values = dict(params or {})
        rows: list[Any] = await self._read(
            lambda c: list(c.exec_driver_sql(statement, values).all())
        )
        return rows

    async def _fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        statement = self._q(sql)
        values = dict(params or {})
        return await self._read(lambda c: c.exec_driver_sql(statement, values).first())

    async def _scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = await self._fetch_one(sql, params)
        return None if row is None else row[0]

    async def _change(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run one write statement; the number of rows it changed."""
        statement = self._q(sql)
        values = dict(params)

        def run(cursor: DBAPICursor) -> int:
            cursor.execute(statement, values)
            return int(cursor.rowcount)

        return await self._call(run)


def escape_like(text_value: str) -> str:
    """``text_value`` as a LIKE pattern's literal part (with ``ESCAPE '\\'``)."""
    return text_value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
