"""A read connection straight on the database driver, for SQLite's inline reads.

The read functions need only ``exec_driver_sql`` and a few result methods; SQLAlchemy's
``Connection`` answers those at about ten times the cost of the driver itself (result
proxies, events, autobegin), which made reads the largest share of an execution's time.
``RawReader`` offers the same calls on the driver's connection, with rows that read by
column name like SQLAlchemy's.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.engine.interfaces import DBAPIConnection

__all__ = ["RawReader", "ReadResult", "Reader"]


class ReadResult(Protocol):
    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def one_or_none(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...

    def scalar(self) -> Any: ...


class Reader(Protocol):
    """What the read functions use of a connection."""

    def exec_driver_sql(self, statement: str, parameters: Any = ...) -> Any: ...


@functools.lru_cache(maxsize=256)
def _row_type(columns: tuple[str, ...]) -> Any:
    return namedtuple("Row", columns, rename=True)


class _Result:
    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise ValueError("more than one row")
        return self.first()

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0][0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]


class RawReader:
    """``exec_driver_sql`` on a DBAPI connection; each call is its own short read."""

    def __init__(self, connection: DBAPIConnection) -> None:
        self._connection = connection

    def exec_driver_sql(
        self, statement: str, parameters: Mapping[str, Any] | None = None
    ) -> _Result:
        cursor = self._connection.cursor()
        try:
            cursor.execute(statement, dict(parameters or {}))
            description = cursor.description
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if description is None:
            return _Result([])
        row_type = _row_type(tuple(column[0] for column in description))
        return _Result([row_type._make(row) for row in rows])

    def close(self) -> None:
        self._connection.close()
