"""Flowork variables: named values of one owner, for ``{{vars.NAME}}``.

``payload`` is JSON (``{"value", "values"}``), sealed by the services when the variable is
secret; the store never looks inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["VariableRecord", "VariableStatements", "VariablesMixin"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class VariableRecord:
    """A row of ``variables``."""

    owner: str
    name: str
    mode: str
    is_secret: bool
    is_enabled: bool
    payload: str
    updated_at: float
    sequence_next: int = 0


_COLUMNS: Final = "owner, name, mode, is_secret, is_enabled, payload, updated_at, sequence_next"
LIST: Final = f"SELECT {_COLUMNS} FROM variables WHERE owner = :owner ORDER BY name"
SELECT: Final = f"SELECT {_COLUMNS} FROM variables WHERE owner = :owner AND name = :name"
# Saving a variable starts a sequential one over.
UPSERT: Final = f"""
INSERT INTO variables ({_COLUMNS})
VALUES (:owner, :name, :mode, :is_secret, :is_enabled, :payload, :updated_at, 0)
ON CONFLICT (owner, name) DO UPDATE SET
    mode = excluded.mode,
    is_secret = excluded.is_secret,
    is_enabled = excluded.is_enabled,
    payload = excluded.payload,
    updated_at = excluded.updated_at,
    sequence_next = 0
"""
DELETE: Final = "DELETE FROM variables WHERE owner = :owner AND name = :name"
ADVANCE: Final = """
UPDATE variables SET sequence_next = sequence_next + 1 WHERE owner = :owner AND name = :name
RETURNING sequence_next
"""


class VariableStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.list = render(LIST)
        self.select = render(SELECT)
        self.upsert = render(UPSERT)
        self.delete = render(DELETE)
        self.advance = render(ADVANCE)


def _variable_from(row: Any) -> VariableRecord:
    return VariableRecord(
        owner=row[0],
        name=row[1],
        mode=row[2],
        is_secret=bool(row[3]),
        is_enabled=bool(row[4]),
        payload=row[5],
        updated_at=float(row[6]),
        sequence_next=int(row[7]),
    )


class VariablesMixin:
    """Variables, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _variable_statements: VariableStatements | None = None

    @property
    def _variables_sql(self) -> VariableStatements:
        if self._variable_statements is None:
            self._variable_statements = VariableStatements(self._writer_engine.dialect)
        return self._variable_statements

    async def list_variables(self, owner: str) -> list[VariableRecord]:
        sql = self._variables_sql
        rows = await self._read(lambda r: r.exec_driver_sql(sql.list, {"owner": owner}).all())
        return [_variable_from(row) for row in rows]

    async def get_variable(self, owner: str, name: str) -> VariableRecord | None:
        sql = self._variables_sql
        params = {"owner": owner, "name": name}
        row = await self._read(lambda r: r.exec_driver_sql(sql.select, params).first())
        return None if row is None else _variable_from(row)

    async def put_variable(self, record: VariableRecord) -> None:
        """Create or replace a variable."""
        sql = self._variables_sql
        params = {
            "owner": record.owner,
            "name": record.name,
            "mode": record.mode,
            "is_secret": record.is_secret,
            "is_enabled": record.is_enabled,
            "payload": record.payload,
            "updated_at": record.updated_at,
        }

        def put(cursor: DBAPICursor) -> None:
            cursor.execute(sql.upsert, params)

        await self._call(put)

    async def delete_variable(self, owner: str, name: str) -> bool:
        sql = self._variables_sql

        def delete(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.delete, {"owner": owner, "name": name})
            return bool(cursor.rowcount == 1)

        return await self._call(delete)

    async def advance_variable_sequence(self, owner: str, name: str) -> int | None:
        """Take the next index of a sequential variable (0, 1, 2... across processes);
        None if there is no such variable."""
        sql = self._variables_sql

        def advance(cursor: DBAPICursor) -> int | None:
            cursor.execute(sql.advance, {"owner": owner, "name": name})
            row = cursor.fetchone()
            return None if row is None else int(row[0]) - 1

        return await self._call(advance)
