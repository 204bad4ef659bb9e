"""Flowork presets: named workflows of one owner, saved as numbered versions.

A version row is never updated once written. The services decide what a version holds
and how versions chain (``previous_hash``, ``hash``); the store appends a version in one
transaction with the read of the latest one, so concurrent saves cannot fork the chain
(a second writer of the same version number gets ``ConflictError``).
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

__all__ = ["PresetHead", "PresetStatements", "PresetSummary", "PresetVersionRecord", "PresetsMixin"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PresetVersionRecord:
    """A row of ``preset_versions``; ``workflow_data`` is JSON text."""

    owner: str
    name: str
    version: int
    author: str
    created_at: float
    hash: str
    workflow_data: str
    previous_hash: str | None = None
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class PresetHead:
    """The latest version of a preset, as the next version needs it."""

    version: int
    hash: str


@dataclass(frozen=True, slots=True)
class PresetSummary:
    name: str
    latest_version: int
    updated_at: float


_COLUMNS: Final = (
    "owner, name, version, author, created_at, hash, workflow_data, previous_hash, signature"
)
INSERT: Final = f"""
INSERT INTO preset_versions ({_COLUMNS})
VALUES (:owner, :name, :version, :author, :created_at, :hash, :workflow_data, :previous_hash,
        :signature)
"""
HEAD: Final = """
SELECT version, hash FROM preset_versions WHERE owner = :owner AND name = :name
ORDER BY version DESC LIMIT 1
"""
VERSIONS: Final = (
    f"SELECT {_COLUMNS} FROM preset_versions WHERE owner = :owner AND name = :name ORDER BY version"
)
SUMMARIES: Final = """
SELECT name, MAX(version), MAX(created_at) FROM preset_versions WHERE owner = :owner
GROUP BY name ORDER BY name
"""
EXISTS: Final = "SELECT 1 FROM preset_versions WHERE owner = :owner AND name = :name LIMIT 1"
DELETE: Final = "DELETE FROM preset_versions WHERE owner = :owner AND name = :name"


class PresetStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.insert = render(INSERT)
        self.head = render(HEAD)
        self.versions = render(VERSIONS)
        self.summaries = render(SUMMARIES)
        self.exists = render(EXISTS)
        self.delete = render(DELETE)


def _row(record: PresetVersionRecord) -> dict[str, Any]:
    return {
        "owner": record.owner,
        "name": record.name,
        "version": record.version,
        "author": record.author,
        "created_at": record.created_at,
        "hash": record.hash,
        "workflow_data": record.workflow_data,
        "previous_hash": record.previous_hash,
        "signature": record.signature,
    }


def _version_from(row: Any) -> PresetVersionRecord:
    return PresetVersionRecord(
        owner=row[0],
        name=row[1],
        version=int(row[2]),
        author=row[3],
        created_at=float(row[4]),
        hash=row[5],
        workflow_data=row[6],
        previous_hash=row[7],
        signature=row[8],
    )


class PresetsMixin:
    """Preset versions, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _preset_statements: PresetStatements | None = None

    @property
    def _presets_sql(self) -> PresetStatements:
        if self._preset_statements is None:
            self._preset_statements = PresetStatements(self._writer_engine.dialect)
        return self._preset_statements

    async def append_preset_version(
        self,
        owner: str,
        name: str,
        make: Callable[[PresetHead | None], PresetVersionRecord],
    ) -> PresetVersionRecord:
        """Append the version ``make`` builds from the latest one (None for a new preset),
        in the same transaction. ``make`` must be pure: the writer may call it again."""
        sql = self._presets_sql

        def append(cursor: DBAPICursor) -> PresetVersionRecord:
            cursor.execute(sql.head, {"owner": owner, "name": name})
            row = cursor.fetchone()
            head = None if row is None else PresetHead(version=int(row[0]), hash=row[1])
            record = make(head)
            cursor.execute(sql.insert, _row(record))
            return record

        return await self._call(append)

    async def preset_versions(self, owner: str, name: str) -> list[PresetVersionRecord]:
        """Every version of a preset, oldest first; empty if there is none."""
        sql = self._presets_sql
        params = {"owner": owner, "name": name}
        rows = await self._read(lambda r: r.exec_driver_sql(sql.versions, params).all())
        return [_version_from(row) for row in rows]

    async def list_presets(self, owner: str) -> list[PresetSummary]:
        """The presets of ``owner``, by name."""
        sql = self._presets_sql
        rows = await self._read(lambda r: r.exec_driver_sql(sql.summaries, {"owner": owner}).all())
        return [PresetSummary(row[0], int(row[1]), float(row[2])) for row in rows]

    async def preset_exists(self, owner: str, name: str) -> bool:
        sql = self._presets_sql
        params = {"owner": owner, "name": name}
        return await self._read(lambda r: r.exec_driver_sql(sql.exists, params).first() is not None)

    async def delete_preset(self, owner: str, name: str) -> bool:
        """Delete every version of a preset; False if there was none."""
        sql = self._presets_sql

        def delete(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.delete, {"owner": owner, "name": name})
            return bool(cursor.rowcount > 0)

        return await self._call(delete)
