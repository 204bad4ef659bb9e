"""The KV store of flow8: JSON values by key, in a scope (``user:<id>`` or ``group:<id>``).

Entries may expire (``expires_at``); an expired entry is never returned, and
``purge_kv`` deletes them. Keys are unique per scope, so a put is an upsert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store._repo import RepositoryMixin, escape_like, float_or_none
from runnel.store.codec import dumps, loads

__all__ = ["KvMixin", "KvRecord", "KvWrite"]


@dataclass(frozen=True, slots=True)
class KvRecord:
    id: str
    scope: str
    key: str
    value: Any
    created_at: float
    updated_at: float
    expires_at: float | None = None


_COLUMNS: Final = "id, scope, key, value, created_at, updated_at, expires_at"
_UPSERT: Final = f"""
INSERT INTO kv_entries ({_COLUMNS})
VALUES (:id, :scope, :key, :value, :now, :now, :expires_at)
ON CONFLICT (scope, key) DO UPDATE
SET value = excluded.value, updated_at = excluded.updated_at,
    expires_at = excluded.expires_at,
    created_at = CASE WHEN kv_entries.expires_at IS NOT NULL
                       AND kv_entries.expires_at <= excluded.updated_at
                      THEN excluded.created_at ELSE kv_entries.created_at END
"""
_SELECT_KEY: Final = f"""
SELECT {_COLUMNS} FROM kv_entries
WHERE scope = :scope AND key = :key AND (expires_at IS NULL OR expires_at > :now)
"""
_SELECT_ID: Final = f"""
SELECT {_COLUMNS} FROM kv_entries
WHERE id = :id AND (expires_at IS NULL OR expires_at > :now)
"""
_LIVE_IN_SCOPE: Final = """
WHERE scope = :scope AND (expires_at IS NULL OR expires_at > :now)
  AND key LIKE :pattern ESCAPE '\\'
"""
_LIST: Final = f"""
SELECT {_COLUMNS} FROM kv_entries {_LIVE_IN_SCOPE}
ORDER BY key LIMIT :limit OFFSET :offset
"""
_COUNT: Final = f"SELECT COUNT(*) FROM kv_entries {_LIVE_IN_SCOPE}"
_DELETE: Final = "DELETE FROM kv_entries WHERE id = :id"
_PURGE: Final = "DELETE FROM kv_entries WHERE expires_at IS NOT NULL AND expires_at <= :now"


def _record(row: Any) -> KvRecord:
    return KvRecord(
        id=row[0],
        scope=row[1],
        key=row[2],
        value=loads(row[3]),
        created_at=float(row[4]),
        updated_at=float(row[5]),
        expires_at=float_or_none(row[6]),
    )


@dataclass(frozen=True, slots=True)
class KvWrite:
    """One upsert: ``value`` is the already encoded JSON text."""

    new_id: str
    scope: str
    key: str
    value_json: str
    expires_at: float | None


class KvMixin(RepositoryMixin):
    """KV entries, as methods of ``SqlStore``."""

    async def kv_put(
        self,
        new_id: str,
        scope: str,
        key: str,
        value: Any,
        now: float,
        expires_at: float | None,
    ) -> KvRecord:
        """Insert or replace ``key`` in ``scope`` (an existing entry keeps its id)."""
        await self.kv_put_many([KvWrite(new_id, scope, key, dumps(value), expires_at)], now)
        found = await self.kv_get(scope, key, now)
        assert found is not None
        return found

    async def kv_put_many(self, writes: Sequence[KvWrite], now: float) -> None:
        """Several upserts in one transaction."""
        upsert = self._q(_UPSERT)
        rows = [
            {
                "id": write.new_id,
                "scope": write.scope,
                "key": write.key,
                "value": write.value_json,
                "now": now,
                "expires_at": write.expires_at,
            }
            for write in writes
        ]

        def run(cursor: DBAPICursor) -> None:
            for row in rows:
                cursor.execute(upsert, row)

        if rows:
            await self._call(run)

    async def kv_get(self, scope: str, key: str, now: float) -> KvRecord | None:
        row = await self._fetch_one(_SELECT_KEY, {"scope": scope, "key": key, "now": now})
        return None if row is None else _record(row)

    async def kv_get_by_id(self, entry_id: str, now: float) -> KvRecord | None:
        row = await self._fetch_one(_SELECT_ID, {"id": entry_id, "now": now})
        return None if row is None else _record(row)

    async def kv_list(
        self, scope: str, prefix: str, now: float, limit: int, offset: int
    ) -> tuple[list[KvRecord], int]:
        """Live entries of ``scope`` whose key starts with ``prefix``, by key."""
        params = {
            "scope": scope,
            "now": now,
            "pattern": escape_like(prefix) + "%",
            "limit": limit,
            "offset": offset,
        }
        rows = await self._fetch_all(_LIST, params)
        total = await self._scalar(_COUNT, params)
        return [_record(row) for row in rows], int(total or 0)

    async def kv_delete(self, entry_id: str) -> bool:
        return await self._change(_DELETE, {"id": entry_id}) == 1

    async def purge_kv(self, now: float) -> int:
        """Delete expired entries; how many."""
        return await self._change(_PURGE, {"now": now})
