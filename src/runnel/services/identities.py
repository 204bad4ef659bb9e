"""Flowork identities: signing in with an Ethereum signature, and the account behind it.

A user is one account whatever way they sign in. An address belongs to at most one user;
it is set when a signature-only user is auto-registered (the first time an unknown address
signs correctly), or linked to an existing (email and password) user who proves that they
hold it. Signed messages are checked by ``runnel.auth.signatures``; that each one is
accepted only once is checked here, against the store's seen-set, so it holds across
processes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from runnel.auth.signatures import (
    InvalidSignature,
    MessageFormat,
    SignatureProblem,
    SignedMessage,
    VerifiedSignature,
    is_address,
    normalize_address,
    verify,
)

# The accounts module's one conversion from a stored user to what the services show.
from runnel.services.accounts import Principal, Role, UserInfo
from runnel.services.accounts import _user_info as _info
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail, Unauthorized
from runnel.store import SqlStore
from runnel.store.accounts import UserRecord
from runnel.store.engines import UserRef
from runnel.store.errors import ConflictError

__all__ = [
    "FloworkUser",
    "IdentityService",
    "Profile",
    "SignatureRejected",
    "profile_of",
]

log = logging.getLogger(__name__)

#: The seen-set is pruned at most this often per process.
PRUNE_INTERVAL_SECONDS: Final = 60.0
#: Every runnel user has every feature: the top tier of the original (its "Open Core"
#: gateway also answers this one for everybody).
TIER: Final = "architect"
_MEMBER_PERMISSIONS: Final = (
    "engines:manage",
    "engines:share",
    "presets:manage",
    "variables:manage",
    "workflows:share",
)
_ADMIN_PERMISSIONS: Final = (*_MEMBER_PERMISSIONS, "admin:kill_switch")


class SignatureRejected(Unauthorized):
    """A signed message was refused; ``problem`` says why."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FloworkUser:
    """Who signed a request: their account and the address they signed with."""

    user: UserInfo
    address: str

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def principal(self) -> Principal:
        return Principal(self.user.id, self.user.role)


@dataclass(frozen=True, slots=True)
class Profile:
    """``GET /auth/profile``: the account as Flowork shows it."""

    id: str
    username: str | None
    email: str | None
    address: str | None
    tier: str
    permissions: tuple[str, ...]


def profile_of(user: UserInfo) -> Profile:
    """The one rule for what a Flowork profile says (tier, permissions) about a user."""
    permissions = _ADMIN_PERMISSIONS if user.role is Role.ADMIN else _MEMBER_PERMISSIONS
    return Profile(
        id=user.id,
        username=user.display_name,
        email=user.email,
        address=user.address,
        tier=TIER,
        permissions=permissions,
    )


class IdentityService:
    """Sign-in by signature, auto-registration, address links, users by identifier."""

    def __init__(self, store: SqlStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        self._pruned_at = 0.0

    # -- signatures ---------------------------------------------------------------------

    async def verify(self, signed: SignedMessage, form: MessageFormat) -> VerifiedSignature:
        """Check a signed message of ``form`` (shape, time window, signer) and record it,
        so that it is never accepted again. ``SignatureRejected`` says why not."""
        now = self._clock()
        try:
            verified = verify(signed, form, now)
        except InvalidSignature as error:
            raise SignatureRejected(error.problem, error.message) from None
        await self._prune(now)
        if not await self.store.remember_signature(verified.replay_digest, verified.expires_at):
            raise SignatureRejected(
                SignatureProblem.REPLAYED,
                "Replayed authentication signature: each signed message is accepted once",
            )
        return verified

    async def sign_in(
        self, signed: SignedMessage, form: MessageFormat = MessageFormat.API
    ) -> FloworkUser:
        """The user behind a valid signed message; an address nobody has yet becomes a new
        (signature-only) user. ``SignatureRejected`` for a bad message, ``Unauthorized``
        for a disabled user."""
        verified = await self.verify(signed, form)
        user = await self.user_for_address(verified.address, create=True)
        assert user is not None
        if user.disabled:
            raise Unauthorized("User disabled")
        return FloworkUser(user, verified.address)

    # -- users ------------------------------------------------------------------------

    async def user_for_address(self, address: str, *, create: bool) -> UserInfo | None:
        """The user holding ``address``; with ``create``, a new member if nobody does."""
        normalized = normalize_address(address)
        found = await self.store.get_user_by_address(normalized)
        if found is not None or not create:
            return None if found is None else _info(found)
        username = await self._free_username(normalized)
        record = UserRecord(
            id=secrets.token_hex(12),
            role=Role.MEMBER.value,
            created_at=self._clock(),
            display_name=username,
            address=normalized,
        )
        try:
            await self.store.create_user(record)
        except ConflictError:
            # Someone registered the same address meanwhile (two first requests at once).
            found = await self.store.get_user_by_address(normalized)
            if found is None:
                raise
            return _info(found)
        log.info("registered user %s for address %s", record.id, normalized)
        return _info(record)

    async def find(self, identifier: str, *, create_addresses: bool) -> UserInfo:
        """The user an identifier names: an address (with ``create_addresses``, an unknown
        address gets a new account) or else a username (display name, any case).
        ``NotFound``; ``Conflict`` when several users have that name."""
        text = identifier.strip()
        if not text:
            raise InvalidInput(
                "share_with_identifier must be a username or an address",
                [ProblemDetail("must not be empty", "share_with_identifier")],
            )
        if is_address(text):
            user = await self.user_for_address(text, create=create_addresses)
            if user is None:
                raise NotFound("user", text)
            return user
        if text.lower().startswith("0x") and len(text) > 2:
            raise InvalidInput(
                f"{text!r} is not an address (0x and 40 hex characters)",
                [ProblemDetail("not an address", "share_with_identifier")],
            )
        named = await self.store.users_named(text)
        if not named:
            raise NotFound("user", text)
        if len(named) > 1:
            raise Conflict(f"Several users are named {text!r}: use their address instead")
        found = await self.store.get_user(named[0].id)
        if found is None:
            raise NotFound("user", text)
        return _info(found)

    async def link_address(self, user_id: str, address: str) -> UserInfo:
        """Give ``user_id`` the address they proved they hold. ``Conflict`` if the address
        belongs to someone else or the user already has another one."""
        normalized = normalize_address(address)
        holder = await self.store.get_user_by_address(normalized)
        if holder is not None:
            if holder.id == user_id:
                return _info(holder)
            raise Conflict(f"Address {normalized} belongs to another user")
        try:
            linked = await self.store.set_user_address(user_id, normalized)
        except ConflictError:
            raise Conflict(f"Address {normalized} belongs to another user") from None
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFound("user", user_id)
        if not linked:
            raise Conflict(f"User {user_id} already has the address {user.address}")
        return _info(user)

    async def user_ref(self, user_id: str) -> UserRef:
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFound("user", user_id)
        return UserRef(user.id, user.display_name, user.email, user.address)

    # -- plumbing ---------------------------------------------------------------------

    async def _free_username(self, address: str) -> str:
        """``user_`` and the start of the address, longer until no one has that name."""
        digits = address[2:]
        for length in (8, 12, 16, 40):
            name = f"user_{digits[:length]}"
            if not await self.store.users_named(name):
                return name
        return f"user_{digits}_{secrets.token_hex(2)}"

    async def _prune(self, now: float) -> None:
        if now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        try:
            await self.store.prune_signatures(now)
        except Exception as error:  # bookkeeping: a sign-in is not refused for it
            log.warning("could not prune the seen signatures: %s", error)
