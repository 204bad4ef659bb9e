"""Workflow share links: a token that grants a preset of its owner at one level.

A link is found by the SHA-256 of its token (one indexed read, on every use: a deleted or
downgraded link stops granting at once); the token itself is kept sealed, for the owner's
list of links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.engines import UserRef
from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["ShareLinkRecord", "ShareLinkStatements", "ShareLinksMixin"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ShareLinkRecord:
    """A row of ``workflow_share_links``. Times are unix seconds."""

    id: str
    owner_id: str
    preset_name: str
    permission: str
    token_sha256: str
    token_sealed: str
    created_at: float
    updated_at: float
    link_name: str | None = None


_COLUMNS: Final = (
    "id, owner_id, preset_name, permission, token_sha256, token_sealed, created_at,"
    " updated_at, link_name"
)
_L_COLUMNS: Final = ", ".join(f"l.{column.strip()}" for column in _COLUMNS.split(","))

INSERT: Final = f"""
INSERT INTO workflow_share_links ({_COLUMNS})
VALUES (:id, :owner_id, :preset_name, :permission, :token_sha256, :token_sealed, :created_at,
        :updated_at, :link_name)
"""
LIST: Final = f"""
SELECT {_COLUMNS} FROM workflow_share_links
WHERE owner_id = :owner_id AND preset_name = :preset_name
ORDER BY created_at DESC, id
"""
SELECT_ONE: Final = f"SELECT {_COLUMNS} FROM workflow_share_links WHERE id = :id"
SELECT_BY_DIGEST: Final = f"""
SELECT {_L_COLUMNS}, u.id, u.display_name, u.email, u.address
FROM workflow_share_links l JOIN users u ON u.id = l.owner_id
WHERE l.token_sha256 = :token_sha256 AND NOT u.disabled
"""
UPDATE_PERMISSION: Final = """
UPDATE workflow_share_links SET permission = :permission, updated_at = :now
WHERE id = :id AND owner_id = :owner_id
"""
DELETE: Final = "DELETE FROM workflow_share_links WHERE id = :id AND owner_id = :owner_id"


class ShareLinkStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.insert = render(INSERT)
        self.list = render(LIST)
        self.select_one = render(SELECT_ONE)
        self.select_by_digest = render(SELECT_BY_DIGEST)
        self.update_permission = render(UPDATE_PERMISSION)
        self.delete = render(DELETE)


def _row(link: ShareLinkRecord) -> dict[str, Any]:
    return {
        "id": link.id,
        "owner_id": link.owner_id,
        "preset_name": link.preset_name,
        "permission": link.permission,
        "token_sha256": link.token_sha256,
        "token_sealed": link.token_sealed,
        "created_at": link.created_at,
        "updated_at": link.updated_at,
        "link_name": link.link_name,
    }


def _link_from(row: Any) -> ShareLinkRecord:
    return ShareLinkRecord(
        id=row[0],
        owner_id=row[1],
        preset_name=row[2],
        permission=row[3],
        token_sha256=row[4],
        token_sealed=row[5],
        created_at=float(row[6]),
        updated_at=float(row[7]),
        link_name=row[8],
    )


def _changed(cursor: DBAPICursor, sql: str, params: Mapping[str, Any]) -> bool:
    cursor.execute(sql, dict(params))
    return bool(cursor.rowcount == 1)


class ShareLinksMixin:
    """Share links, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _share_link_statements: ShareLinkStatements | None = None

    @property
    def _share_links_sql(self) -> ShareLinkStatements:
        if self._share_link_statements is None:
            self._share_link_statements = ShareLinkStatements(self._writer_engine.dialect)
        return self._share_link_statements

    async def create_share_link(self, link: ShareLinkRecord) -> None:
        """Insert a link (``ConflictError`` for an unknown owner or a taken digest)."""
        sql, row = self._share_links_sql, _row(link)
        await self._call(lambda cursor: _changed(cursor, sql.insert, row))

    async def list_share_links(self, owner_id: str, preset_name: str) -> list[ShareLinkRecord]:
        """The links of one preset of ``owner_id``, newest first."""
        sql = self._share_links_sql
        params = {"owner_id": owner_id, "preset_name": preset_name}
        rows = await self._read(lambda r: r.exec_driver_sql(sql.list, params).all())
        return [_link_from(row) for row in rows]

    async def get_share_link(self, link_id: str) -> ShareLinkRecord | None:
        sql = self._share_links_sql
        row = await self._read(lambda r: r.exec_driver_sql(sql.select_one, {"id": link_id}).first())
        return None if row is None else _link_from(row)

    async def share_link_by_digest(
        self, token_sha256: str
    ) -> tuple[ShareLinkRecord, UserRef] | None:
        """The link whose token has this digest, with its owner (not if disabled)."""
        sql = self._share_links_sql
        params = {"token_sha256": token_sha256}
        row = await self._read(lambda r: r.exec_driver_sql(sql.select_by_digest, params).first())
        if row is None:
            return None
        return _link_from(row), UserRef(id=row[9], username=row[10], email=row[11], address=row[12])

    async def set_share_link_permission(
        self, link_id: str, owner_id: str, permission: str, now: float
    ) -> bool:
        """Change a link of ``owner_id``; False if there is no such link of theirs."""
        sql = self._share_links_sql
        params = {"id": link_id, "owner_id": owner_id, "permission": permission, "now": now}
        return await self._call(lambda cursor: _changed(cursor, sql.update_permission, params))

    async def delete_share_link(self, link_id: str, owner_id: str) -> bool:
        sql = self._share_links_sql
        params = {"id": link_id, "owner_id": owner_id}
        return await self._call(lambda cursor: _changed(cursor, sql.delete, params))
