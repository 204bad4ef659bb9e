"""The user queries of Flowork sign-in that ``runnel.store.accounts`` does not have:
users by display name (a Flowork "username") and linking an address to a user."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.engines import UserRef
from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["IdentitiesMixin", "IdentityStatements"]

_T = TypeVar("_T")

USERS_NAMED: Final = """
SELECT id, display_name, email, address FROM users
WHERE LOWER(display_name) = LOWER(:name)
ORDER BY created_at, id
"""
# Only a user without an address gets one: an address is never moved between users here.
SET_ADDRESS: Final = "UPDATE users SET address = :address WHERE id = :id AND address IS NULL"


class IdentityStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.users_named = render(USERS_NAMED)
        self.set_address = render(SET_ADDRESS)


class IdentitiesMixin:
    """Flowork identity queries, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _identity_statements: IdentityStatements | None = None

    @property
    def _identities_sql(self) -> IdentityStatements:
        if self._identity_statements is None:
            self._identity_statements = IdentityStatements(self._writer_engine.dialect)
        return self._identity_statements

    async def users_named(self, name: str) -> list[UserRef]:
        """The users whose display name is ``name``, ignoring case, oldest first."""
        sql = self._identities_sql
        rows = await self._read(lambda r: r.exec_driver_sql(sql.users_named, {"name": name}).all())
        return [UserRef(id=row[0], username=row[1], email=row[2], address=row[3]) for row in rows]

    async def set_user_address(self, user_id: str, address: str) -> bool:
        """Give a user without an address this one; False if the user has one or does not
        exist. ``ConflictError`` if another user has it."""
        sql = self._identities_sql
        params = {"id": user_id, "address": address}

        def link(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.set_address, params)
            return bool(cursor.rowcount == 1)

        return await self._call(link)
