"""flow8 groups: named sets of users with a role each (owner, editor, runner, viewer).

Whoever creates a group is its first owner. Members see the group; its owners rename it,
change its members and delete it (``Action.MANAGE``). A group keeps at least one owner.
Deleting a group leaves what it held to the users who own it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from runnel.services.access import Access, Action, GroupRole, Resource
from runnel.services.accounts import Principal
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore
from runnel.store.errors import ConflictError
from runnel.store.groups import GroupRecord, MemberRecord

__all__ = ["Group", "GroupService", "Member", "MemberSpec"]

MAX_NAME_CHARS: Final = 200
MAX_MEMBERS: Final = 1000


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """A member to set: by user id or by email."""

    role: str
    user_id: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    role: GroupRole
    email: str | None
    display_name: str | None
    added_at: float


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    description: str
    members: tuple[Member, ...]
    created_by: str | None
    created_at: float
    updated_at: float
    #: The caller's role in it (None for an admin who is not a member).
    my_role: GroupRole | None = None


def _resource(group_id: str) -> Resource:
    return Resource("group", group_id, owner=None, group_id=group_id)


class GroupService:
    def __init__(
        self, store: SqlStore, access: Access, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.access = access
        self._clock = clock

    async def _members(
        self, group_id: str, specs: Sequence[MemberSpec], now: float
    ) -> list[MemberRecord]:
        """Resolve member specs to records; ``InvalidInput`` naming each bad one."""
        problems: list[ProblemDetail] = []
        members: dict[str, MemberRecord] = {}
        if len(specs) > MAX_MEMBERS:
            problems.append(ProblemDetail(f"at most {MAX_MEMBERS} members", "members"))
        for index, spec in enumerate(specs[:MAX_MEMBERS]):
            where = f"members[{index}]"
            if spec.role not in {role.value for role in GroupRole}:
                problems.append(
                    ProblemDetail(
                        f"role must be one of {', '.join(r.value for r in GroupRole)}",
                        f"{where}.role",
                    )
                )
                continue
            user = None
            if spec.user_id:
                user = await self.store.get_user(spec.user_id)
            elif spec.email:
                user = await self.store.get_user_by_email(spec.email.strip().lower())
            else:
                problems.append(ProblemDetail("needs a userId or an email", where))
                continue
            if user is None or user.disabled:
                problems.append(ProblemDetail("no such user", where, "unknown_user"))
                continue
            members[user.id] = MemberRecord(group_id, user.id, spec.role, now)
        if not problems and not any(m.role == GroupRole.OWNER for m in members.values()):
            problems.append(ProblemDetail("a group needs at least one owner", "members"))
        if problems:
            raise InvalidInput("invalid group: " + "; ".join(map(str, problems)), problems)
        return list(members.values())

    async def _view(self, principal: Principal, record: GroupRecord) -> Group:
        members = []
        my_role = None
        for member in await self.store.group_members(record.id):
            user = await self.store.get_user(member.user_id)
            role = GroupRole(member.role)
            if member.user_id == principal.user_id:
                my_role = role
            members.append(
                Member(
                    user_id=member.user_id,
                    role=role,
                    email=user.email if user else None,
                    display_name=user.display_name if user else None,
                    added_at=member.added_at,
                )
            )
        return Group(
            id=record.id,
            name=record.name,
            description=record.description,
            members=tuple(members),
            created_by=record.created_by,
            created_at=record.created_at,
            updated_at=record.updated_at,
            my_role=my_role,
        )

    async def create(
        self,
        principal: Principal,
        name: str,
        description: str = "",
        members: Sequence[MemberSpec] = (),
    ) -> Group:
        """A new group; the caller is an owner (besides the ``members`` given)."""
        _check_name(name)
        group_id = secrets.token_hex(12)
        now = self._clock()
        specs = [MemberSpec(GroupRole.OWNER.value, user_id=principal.user_id), *members]
        records = await self._members(group_id, specs, now)
        group = GroupRecord(group_id, name.strip(), description or "", now, now, principal.user_id)
        try:
            await self.store.create_group(group, records)
        except ConflictError:  # a member was deleted meanwhile
            raise InvalidInput("invalid group: a member no longer exists") from None
        return await self._view(principal, group)

    async def get(self, principal: Principal, group_id: str) -> Group:
        record = await self.store.get_group(group_id)
        if record is None:
            raise NotFound("group", group_id)
        await self.access.check(principal, _resource(group_id), Action.VIEW)
        return await self._view(principal, record)

    async def list(
        self, principal: Principal, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[Group], int]:
        records, total = await self.store.list_groups(Access.viewer(principal), limit, offset)
        return [await self._view(principal, record) for record in records], total

    async def update(
        self,
        principal: Principal,
        group_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        members: Sequence[MemberSpec] | None = None,
    ) -> Group:
        """Rename, describe or replace the members of a group (its owners only)."""
        record = await self.store.get_group(group_id)
        if record is None:
            raise NotFound("group", group_id)
        await self.access.check(principal, _resource(group_id), Action.MANAGE)
        if name is not None:
            _check_name(name)
        now = self._clock()
        records = None if members is None else await self._members(group_id, members, now)
        if records is not None:
            # Members who stay keep the time they joined.
            joined = {m.user_id: m.added_at for m in await self.store.group_members(group_id)}
            records = [
                MemberRecord(m.group_id, m.user_id, m.role, joined.get(m.user_id, now))
                for m in records
            ]
        updated = GroupRecord(
            id=group_id,
            name=(name or record.name).strip(),
            description=record.description if description is None else description,
            created_at=record.created_at,
            updated_at=now,
            created_by=record.created_by,
        )
        try:
            found = await self.store.update_group(updated, records)
        except ConflictError:
            raise InvalidInput("invalid group: a member no longer exists") from None
        if not found:
            raise NotFound("group", group_id)
        return await self._view(principal, updated)

    async def delete(self, principal: Principal, group_id: str) -> None:
        if await self.store.get_group(group_id) is None:
            raise NotFound("group", group_id)
        await self.access.check(principal, _resource(group_id), Action.MANAGE)
        if not await self.store.delete_group(group_id):
            raise NotFound("group", group_id)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"invalid group: name must be 1-{MAX_NAME_CHARS} characters",
            [ProblemDetail(f"must be 1-{MAX_NAME_CHARS} characters", "name")],
        )
