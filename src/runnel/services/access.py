"""Who may do what to a flow8 resource: the one permission check of every route.

A resource (a flow, its plays and schedules, a channel, a KV scope, a group) has an owner
and may belong to a group. The caller may act on it when they are

- an admin (everything), or
- its owner (everything), or
- a member of its group whose role allows the action:

  ========  ====  ===  ====  ======
  role      view  run  edit  manage
  ========  ====  ===  ====  ======
  viewer    yes
  runner    yes   yes
  editor    yes   yes  yes
  owner     yes   yes  yes   yes
  ========  ====  ===  ====  ======

Anyone else does not learn that the resource exists: ``NotFound`` (404). Someone who may
see it but not do this to it gets ``Forbidden`` (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from runnel.services.accounts import Principal
from runnel.services.errors import Forbidden, NotFound
from runnel.store import SqlStore

__all__ = ["Access", "Action", "GroupRole", "Resource", "allows", "visible"]


class GroupRole(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    RUNNER = "runner"
    VIEWER = "viewer"


class Action(StrEnum):
    VIEW = "view"
    RUN = "run"
    EDIT = "edit"
    #: Change a group's members, delete a group.
    MANAGE = "manage"


_ROLE_ACTIONS: Final[Mapping[GroupRole, frozenset[Action]]] = {
    GroupRole.VIEWER: frozenset({Action.VIEW}),
    GroupRole.RUNNER: frozenset({Action.VIEW, Action.RUN}),
    GroupRole.EDITOR: frozenset({Action.VIEW, Action.RUN, Action.EDIT}),
    GroupRole.OWNER: frozenset(Action),
}

_VERBS: Final[Mapping[Action, str]] = {
    Action.VIEW: "see",
    Action.RUN: "run",
    Action.EDIT: "change",
    Action.MANAGE: "manage",
}


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action is on: ``kind`` and ``ident`` name it in errors (``flow``, id)."""

    kind: str
    ident: str
    owner: str | None
    group_id: str | None = None


def allows(
    principal: Principal,
    memberships: Mapping[str, GroupRole],
    resource: Resource,
    action: Action,
) -> bool:
    """Whether ``principal`` (member of ``memberships``) may do ``action`` to ``resource``."""
    if principal.is_admin or (resource.owner is not None and resource.owner == principal.user_id):
        return True
    role = memberships.get(resource.group_id) if resource.group_id is not None else None
    return role is not None and action in _ROLE_ACTIONS[role]


def visible(principal: Principal, memberships: Mapping[str, GroupRole], resource: Resource) -> bool:
    return allows(principal, memberships, resource, Action.VIEW)


class Access:
    """The permission check, with the memberships read from the store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def memberships(self, principal: Principal) -> dict[str, GroupRole]:
        """group id -> the caller's role in it."""
        raw = await self.store.memberships(principal.user_id)
        return {group_id: GroupRole(role) for group_id, role in raw.items() if role in _ROLES}

    async def check(self, principal: Principal, resource: Resource, action: Action) -> None:
        """Return if ``principal`` may do ``action`` to ``resource``; else ``NotFound``
        when they may not even see it, ``Forbidden`` when they may see it."""
        if principal.is_admin or (
            resource.owner is not None and resource.owner == principal.user_id
        ):
            return  # no store read for the common case
        memberships = await self.memberships(principal)
        if allows(principal, memberships, resource, action):
            return
        if not visible(principal, memberships, resource):
            raise NotFound(resource.kind, resource.ident)
        raise Forbidden(
            f"You may not {_VERBS[action]} {resource.kind} {resource.ident}"
            f" (your role in its group: {memberships[resource.group_id or ''].value})"
        )

    @staticmethod
    def viewer(principal: Principal) -> str | None:
        """What store listings narrow to: the caller's id, or None (admins see all)."""
        return None if principal.is_admin else principal.user_id


_ROLES: Final = frozenset(role.value for role in GroupRole)
