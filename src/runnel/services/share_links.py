"""Workflow share links: an unguessable token that grants one preset of its owner.

A link's level says what its holder may do with the preset: ``view`` loads it,
``view-run`` also executes it, ``view-edit-run`` also saves it. The level is read from the
store on every use (``authorize``), so deleting or downgrading a link takes effect at once.
Tokens carry 192 random bits; the store keeps their SHA-256 for lookups and the token
itself only sealed (for the owner's list of links).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from runnel.auth.sealing import SealBroken, Sealer
from runnel.auth.tokens import token_digest
from runnel.services.errors import Forbidden, InvalidInput, NotFound, ProblemDetail
from runnel.services.presets import check_preset_name
from runnel.store import SqlStore
from runnel.store.sharelinks import ShareLinkRecord

__all__ = [
    "PresetAction",
    "ShareGrant",
    "ShareLevel",
    "ShareLink",
    "ShareLinkService",
    "check_grant",
    "parse_share_level",
]

#: 24 random bytes: 192 bits, well over the 128 an unguessable token needs.
TOKEN_BYTES: Final = 24
MAX_LINK_NAME_CHARS: Final = 100
_CONTEXT: Final = "share-link:{link_id}"


class PresetAction(StrEnum):
    LOAD = "load"
    RUN = "run"
    SAVE = "save"


class ShareLevel(StrEnum):
    VIEW = "view"
    VIEW_RUN = "view-run"
    VIEW_EDIT_RUN = "view-edit-run"

    def allows(self, action: PresetAction) -> bool:
        """The one rule of what each level grants."""
        return action in _GRANTS[self]


_GRANTS: Final = {
    ShareLevel.VIEW: frozenset({PresetAction.LOAD}),
    ShareLevel.VIEW_RUN: frozenset({PresetAction.LOAD, PresetAction.RUN}),
    ShareLevel.VIEW_EDIT_RUN: frozenset({PresetAction.LOAD, PresetAction.RUN, PresetAction.SAVE}),
}


def check_grant(
    grant: ShareGrant, owner: str | None, preset_name: str, action: PresetAction
) -> ShareGrant:
    """The one rule of what a resolved link lets its holder do: ``grant`` if it is for
    ``preset_name`` of ``owner`` (a user id or an address; None: whoever owns the link) and
    its level allows ``action``; ``Forbidden`` otherwise."""
    if owner is not None:
        owner_key = owner.strip().lower()
        if owner_key not in {grant.owner_id.lower(), (grant.owner_address or "").lower()}:
            raise Forbidden("This share link is for another owner's workflow")
    if grant.preset_name != preset_name:
        raise Forbidden("This share link is for another workflow")
    if not grant.level.allows(action):
        raise Forbidden(f"This share link ({grant.level.value}) does not allow {action.value}")
    return grant


def parse_share_level(value: object) -> ShareLevel:
    """``view``, ``view-run`` or ``view-edit-run``; ``InvalidInput`` otherwise."""
    try:
        return ShareLevel(str(value))
    except ValueError:
        levels = ", ".join(level.value for level in ShareLevel)
        raise InvalidInput(
            f"permission_level must be one of {levels}",
            [ProblemDetail(f"must be one of {levels}", "permission_level")],
        ) from None


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A link as its owner sees it (with the token)."""

    id: str
    preset_name: str
    level: ShareLevel
    token: str
    created_at: float
    updated_at: float
    link_name: str | None = None


@dataclass(frozen=True, slots=True)
class ShareGrant:
    """What a valid token grants: a preset of an owner, at a level."""

    link_id: str
    owner_id: str
    owner_address: str | None
    owner_username: str | None
    preset_name: str
    level: ShareLevel


class ShareLinkService:
    def __init__(
        self, store: SqlStore, sealer: Sealer, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self._sealer = sealer
        self._clock = clock

    async def list(self, owner_id: str, preset_name: str) -> list[ShareLink]:
        """The links of one preset of ``owner_id``, newest first."""
        name = check_preset_name(preset_name)
        return [self._link(r) for r in await self.store.list_share_links(owner_id, name)]

    async def create(
        self, owner_id: str, preset_name: str, level: object, link_name: object = None
    ) -> ShareLink:
        """A new link to a preset of ``owner_id``."""
        name = check_preset_name(preset_name)
        parsed = parse_share_level(level)
        label = _check_link_name(link_name)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link_id = str(uuid.uuid4())
        now = self._clock()
        record = ShareLinkRecord(
            id=link_id,
            owner_id=owner_id,
            preset_name=name,
            permission=parsed.value,
            token_sha256=token_digest(token),
            token_sealed=self._sealer.seal_text(token, context=_CONTEXT.format(link_id=link_id)),
            created_at=now,
            updated_at=now,
            link_name=label,
        )
        await self.store.create_share_link(record)
        return self._link(record)

    async def update(self, owner_id: str, link_id: str, level: object) -> ShareLink:
        """Change a link's level; it counts from the next use."""
        parsed = parse_share_level(level)
        if not await self.store.set_share_link_permission(
            link_id, owner_id, parsed.value, self._clock()
        ):
            raise NotFound("share link", link_id)
        record = await self.store.get_share_link(link_id)
        if record is None:
            raise NotFound("share link", link_id)
        return self._link(record)

    async def delete(self, owner_id: str, link_id: str) -> None:
        if not await self.store.delete_share_link(link_id, owner_id):
            raise NotFound("share link", link_id)

    async def resolve(self, token: str) -> ShareGrant:
        """What ``token`` grants now. ``NotFound`` for an unknown or deleted link (or a
        disabled owner)."""
        found = await self.store.share_link_by_digest(token_digest(token.strip()))
        if found is None:
            raise NotFound("share link", "for this token")
        record, owner = found
        return ShareGrant(
            link_id=record.id,
            owner_id=owner.id,
            owner_address=owner.address,
            owner_username=owner.username,
            preset_name=record.preset_name,
            level=ShareLevel(record.permission),
        )

    async def authorize(
        self, token: str, owner: str | None, preset_name: str, action: PresetAction
    ) -> ShareGrant:
        """The grant of ``token`` if it is for ``preset_name`` of ``owner`` (a user id or
        an address; None: whoever owns the link) and its level allows ``action``.
        ``NotFound`` for an unknown link, ``Forbidden`` otherwise."""
        return check_grant(await self.resolve(token), owner, preset_name, action)

    def _link(self, record: ShareLinkRecord) -> ShareLink:
        try:
            token = self._sealer.open_text(
                record.token_sealed, context=_CONTEXT.format(link_id=record.id)
            )
        except SealBroken:
            # The instance key changed: the link still works, its token cannot be shown.
            token = ""
        return ShareLink(
            id=record.id,
            preset_name=record.preset_name,
            level=ShareLevel(record.permission),
            token=token,
            created_at=record.created_at,
            updated_at=record.updated_at,
            link_name=record.link_name,
        )


def _check_link_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            "link_name must be a string", [ProblemDetail("must be a string", "link_name")]
        )
    clean = value.strip()
    if len(clean) > MAX_LINK_NAME_CHARS:
        raise InvalidInput(
            f"link_name must be at most {MAX_LINK_NAME_CHARS} characters",
            [ProblemDetail(f"must be at most {MAX_LINK_NAME_CHARS} characters", "link_name")],
        )
    if any(ord(ch) < 32 for ch in clean):
        raise InvalidInput(
            "link_name must not hold control characters",
            [ProblemDetail("holds control characters", "link_name")],
        )
    return clean or None
