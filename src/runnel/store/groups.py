"""Groups and their members (flow8 sharing): who may see, run or edit what a group holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store._repo import RepositoryMixin

__all__ = ["GroupRecord", "GroupsMixin", "MemberRecord"]


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: str
    name: str
    description: str
    created_at: float
    updated_at: float
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class MemberRecord:
    group_id: str
    user_id: str
    role: str
    added_at: float


_GROUP_COLUMNS: Final = "id, name, description, created_by, created_at, updated_at"
_INSERT_GROUP: Final = f"""
INSERT INTO groups ({_GROUP_COLUMNS})
VALUES (:id, :name, :description, :created_by, :created_at, :updated_at)
"""
_UPDATE_GROUP: Final = """
UPDATE groups SET name = :name, description = :description, updated_at = :updated_at
WHERE id = :id
"""
_DELETE_GROUP: Final = "DELETE FROM groups WHERE id = :id"
_SELECT_GROUP: Final = f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = :id"
# {where}: nothing (admins) or membership of the viewer.
_LIST_GROUPS: Final = f"""
SELECT {_GROUP_COLUMNS} FROM groups {{where}}
ORDER BY created_at, id LIMIT :limit OFFSET :offset
"""
_COUNT_GROUPS: Final = "SELECT COUNT(*) FROM groups {where}"
_VISIBLE: Final = "WHERE id IN (SELECT group_id FROM group_members WHERE user_id = :viewer)"
_INSERT_MEMBER: Final = """
INSERT INTO group_members (group_id, user_id, role, added_at)
VALUES (:group_id, :user_id, :role, :added_at)
"""
_DELETE_MEMBERS: Final = "DELETE FROM group_members WHERE group_id = :group_id"
_SELECT_MEMBERS: Final = """
SELECT group_id, user_id, role, added_at FROM group_members
WHERE group_id = :group_id ORDER BY added_at, user_id
"""
_SELECT_MEMBERSHIPS: Final = "SELECT group_id, role FROM group_members WHERE user_id = :user_id"


def _group_from(row: Any) -> GroupRecord:
    return GroupRecord(
        id=row[0],
        name=row[1],
        description=row[2],
        created_by=row[3],
        created_at=float(row[4]),
        updated_at=float(row[5]),
    )


def _group_row(group: GroupRecord) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "created_by": group.created_by,
        "created_at": group.created_at,
        "updated_at": group.updated_at,
    }


def _member_row(member: MemberRecord) -> dict[str, Any]:
    return {
        "group_id": member.group_id,
        "user_id": member.user_id,
        "role": member.role,
        "added_at": member.added_at,
    }


class GroupsMixin(RepositoryMixin):
    """Groups and members, as methods of ``SqlStore``. ``ConflictError`` when a member is
    not a user."""

    async def create_group(self, group: GroupRecord, members: Sequence[MemberRecord]) -> None:
        insert_group, insert_member = self._q(_INSERT_GROUP), self._q(_INSERT_MEMBER)

        def run(cursor: DBAPICursor) -> None:
            cursor.execute(insert_group, _group_row(group))
            for member in members:
                cursor.execute(insert_member, _member_row(member))

        await self._call(run)

    async def update_group(
        self, group: GroupRecord, members: Sequence[MemberRecord] | None
    ) -> bool:
        """Rename or describe a group and, unless ``members`` is None, replace its members
        in the same transaction. False if there is no such group."""
        update = self._q(_UPDATE_GROUP)
        delete_members, insert_member = self._q(_DELETE_MEMBERS), self._q(_INSERT_MEMBER)
        params = {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "updated_at": group.updated_at,
        }

        def run(cursor: DBAPICursor) -> bool:
            cursor.execute(update, params)
            if cursor.rowcount != 1:
                return False
            if members is not None:
                cursor.execute(delete_members, {"group_id": group.id})
                for member in members:
                    cursor.execute(insert_member, _member_row(member))
            return True

        updated: bool = await self._call(run)
        return updated

    async def delete_group(self, group_id: str) -> bool:
        """Delete a group and its memberships (what it held falls back to its owners)."""
        return await self._change(_DELETE_GROUP, {"id": group_id}) == 1

    async def get_group(self, group_id: str) -> GroupRecord | None:
        row = await self._fetch_one(_SELECT_GROUP, {"id": group_id})
        return None if row is None else _group_from(row)

    async def list_groups(
        self, viewer: str | None, limit: int, offset: int
    ) -> tuple[list[GroupRecord], int]:
        """Groups ``viewer`` is a member of (None: every group), oldest first."""
        where = "" if viewer is None else _VISIBLE
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if viewer is not None:
            params["viewer"] = viewer
        rows = await self._fetch_all(_LIST_GROUPS.format(where=where), params)
        total = await self._scalar(_COUNT_GROUPS.format(where=where), params)
        return [_group_from(row) for row in rows], int(total or 0)

    async def group_members(self, group_id: str) -> list[MemberRecord]:
        rows = await self._fetch_all(_SELECT_MEMBERS, {"group_id": group_id})
        return [
            MemberRecord(group_id=r[0], user_id=r[1], role=r[2], added_at=float(r[3])) for r in rows
        ]

    async def memberships(self, user_id: str) -> dict[str, str]:
        """group id -> the role of ``user_id`` in it."""
        rows = await self._fetch_all(_SELECT_MEMBERSHIPS, {"user_id": user_id})
        return {row[0]: row[1] for row in rows}
