"""Per-user state: small JSON values under keys (Flowork's favorite presets and the like).

The store keeps what it is given (JSON text); the services validate keys and values and
set the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["UserStateMixin", "UserStateStatements"]

_T = TypeVar("_T")

SELECT: Final = "SELECT value FROM user_state WHERE user_id = :user_id AND key = :key"
LIST_KEYS: Final = "SELECT key FROM user_state WHERE user_id = :user_id ORDER BY key"
COUNT_OTHERS: Final = "SELECT COUNT(*) FROM user_state WHERE user_id = :user_id AND key <> :key"
UPSERT: Final = """
INSERT INTO user_state (user_id, key, value, updated_at) VALUES (:user_id, :key, :value, :now)
ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
"""
DELETE: Final = "DELETE FROM user_state WHERE user_id = :user_id AND key = :key"


class UserStateStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.select = render(SELECT)
        self.list_keys = render(LIST_KEYS)
        self.count_others = render(COUNT_OTHERS)
        self.upsert = render(UPSERT)
        self.delete = render(DELETE)


class UserStateMixin:
    """Per-user state, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _user_state_statements: UserStateStatements | None = None

    @property
    def _user_state_sql(self) -> UserStateStatements:
        if self._user_state_statements is None:
            self._user_state_statements = UserStateStatements(self._writer_engine.dialect)
        return self._user_state_statements

    async def get_user_state(self, user_id: str, key: str) -> str | None:
        """The JSON text under ``key``; None if unset."""
        sql = self._user_state_sql
        params = {"user_id": user_id, "key": key}
        row = await self._read(lambda r: r.exec_driver_sql(sql.select, params).first())
        return None if row is None else str(row[0])

    async def list_user_state_keys(self, user_id: str) -> list[str]:
        sql = self._user_state_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.list_keys, {"user_id": user_id}).all()
        )
        return [str(row[0]) for row in rows]

    async def put_user_state(
        self, user_id: str, key: str, value: str, now: float, *, max_keys: int
    ) -> bool:
        """Set ``key`` to the JSON text ``value``; False (and nothing written) when that
        would give the user more than ``max_keys`` keys. ``ConflictError`` for an unknown
        user."""
        sql = self._user_state_sql
        params = {"user_id": user_id, "key": key, "value": value, "now": now}

        def put(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.count_others, {"user_id": user_id, "key": key})
            row = cursor.fetchone()
            if row is not None and int(row[0]) >= max_keys:
                return False
            cursor.execute(sql.upsert, params)
            return True

        return await self._call(put)

    async def delete_user_state(self, user_id: str, key: str) -> bool:
        sql = self._user_state_sql
        params = {"user_id": user_id, "key": key}

        def delete(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.delete, params)
            return bool(cursor.rowcount == 1)

        return await self._call(delete)
