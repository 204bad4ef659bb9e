"""Accounts: the owner bootstrap, users, API keys, and who a request's token belongs to.

An API key is a signed token in JWT form (``runnel.auth.tokens``) whose ``jti`` is the
key's id. ``authenticate_token`` checks the signature, then looks the key up in the store,
comparing the token's SHA-256 with the stored one. A verified token is then remembered in
this process for ``AUTH_CACHE_SECONDS`` (the execute API is called with the same key again and
again): a key revoked through this process is refused at once, one revoked (or a user
disabled) by another process within that time; an expired key is refused at its expiry.
``last_used_at`` is written at most once a minute per key.

Every error is one of ``runnel.services.errors``: ``InvalidInput``, ``Conflict``,
``NotFound``, ``Unauthorized``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from runnel.auth.passwords import MAX_PASSWORD_CHARS, Passwords
from runnel.auth.tokens import (
    InvalidToken,
    TokenProblem,
    digests_match,
    issue_token,
    token_digest,
    token_hint,
    verify_token,
)
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail, Unauthorized
from runnel.store import SqlStore
from runnel.store.accounts import ApiKeyRecord, UserRecord
from runnel.store.errors import ConflictError, StoreError

__all__ = [
    "ADMIN_TOKEN_FILE",
    "AccountService",
    "ApiKeyInfo",
    "OwnerBootstrap",
    "Principal",
    "Role",
    "UserInfo",
]

log = logging.getLogger(__name__)

#: Where the first start leaves the owner's admin key, in the data directory.
ADMIN_TOKEN_FILE: Final = "admin-token"
#: ``last_used_at`` is written at most this often per key.
TOUCH_INTERVAL_SECONDS: Final = 60.0
MIN_PASSWORD_CHARS: Final = 8
MAX_NAME_CHARS: Final = 200
MAX_EMAIL_CHARS: Final = 254
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")
#: Bounds the in-process memory of recent ``last_used_at`` writes.
_MAX_TOUCHED: Final = 10_000
#: How long a verified API key is trusted without reading the store again: the longest a
#: revocation made by another process (or a user disabled) takes to reach this one.
AUTH_CACHE_SECONDS: Final = 1.0
#: Bounds the verified keys remembered (the whole memory is dropped when it is full).
_MAX_VERIFIED: Final = 1024


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, with the API key they used (None for other credentials)."""

    user_id: str
    role: Role
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def owner_scope(self) -> str | None:
        """The user whose resources this caller may manage: None (everyone's) for admins."""
        return None if self.is_admin else self.user_id


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the services show it (no password hash). Times are unix seconds."""

    id: str
    role: Role
    created_at: float
    email: str | None = None
    display_name: str | None = None
    address: str | None = None
    disabled: bool = False
    has_password: bool = False


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key without its secret. ``prefix`` is a display hint (the token's first and
    last characters), enough to tell keys apart, useless to an attacker."""

    id: str
    user_id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None = None
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class OwnerBootstrap:
    """What the first start created; ``token`` is shown once and kept in ``token_file``."""

    user: UserInfo
    key: ApiKeyInfo
    token: str
    token_file: Path


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    key: ApiKeyRecord
    #: ``time.monotonic()`` after which the store is read again.
    until: float


class AccountService:
    """Users and API keys. ``signing_key`` is the instance key's API-key subkey
    (``derive_key(master, PURPOSE_API_KEYS)``); ``clock`` gives unix seconds."""

    def __init__(
        self,
        store: SqlStore,
        signing_key: bytes,
        clock: Callable[[], float] = time.time,
        *,
        passwords: Passwords | None = None,
        auth_cache_seconds: float = AUTH_CACHE_SECONDS,
    ) -> None:
        if not signing_key:
            raise ValueError("the signing key is empty")
        self.store = store
        self._signing_key = signing_key
        self._clock = clock
        self._passwords = passwords
        # key id -> when this process last wrote its last_used_at (or started to).
        self._touched: dict[str, float] = {}
        #: Seconds a verified key is remembered (``AUTH_CACHE_SECONDS``; 0: never).
        self.auth_cache_seconds = auth_cache_seconds
        # token -> who it is, while remembered (see the module docstring).
        self._verified: dict[str, _Verified] = {}

    # -- the owner --------------------------------------------------------------------

    async def ensure_owner(self, data_dir: Path) -> OwnerBootstrap | None:
        """On a store with no user: create the owner (an admin) and an admin API key, and
        write the key to ``<data_dir>/admin-token`` (mode 0600). Returns it, for the
        command line to print once; None on every later start (also when another process
        created the owner first)."""
        if await self.store.has_users():
            return None
        now = self._clock()
        user = UserRecord(id=_new_id(), role=Role.ADMIN.value, created_at=now, display_name="owner")
        key, token = self._new_key(user.id, "admin", now, None)
        if not await self.store.create_owner(user, key):
            return None
        token_file = Path(data_dir) / ADMIN_TOKEN_FILE
        # After the commit: a crash in between loses the file, not the account; a new key
        # can then be made with `runnel keys create`.
        await asyncio.to_thread(_write_private_file, token_file, token + "\n")
        log.info("created the owner account %s and its admin key %s", user.id, key.id)
        return OwnerBootstrap(_user_info(user), _key_info(key), token, token_file)

    async def owner_principal(self) -> Principal | None:
        """The first admin (the owner), as a principal without a key; None before
        ``ensure_owner``. What ``--no-auth`` requests act as."""
        for user in await self.store.list_users():
            if user.role == Role.ADMIN.value and not user.disabled:
                return Principal(user.id, Role.ADMIN)
        return None

    # -- users ------------------------------------------------------------------------

    async def create_user(
        self,
        email: str,
        password: str,
        display_name: str | None = None,
        role: str = Role.MEMBER.value,
    ) -> UserInfo:
        """A new user who signs in with ``email`` (case-insensitive) and ``password``.
        ``InvalidInput`` for a bad email, password or role; ``Conflict`` if the email is
        taken."""
        problems: list[ProblemDetail] = []
        normalized = _normalize_email(email, problems)
        if len(password) < MIN_PASSWORD_CHARS:
            problems.append(
                ProblemDetail(f"must be at least {MIN_PASSWORD_CHARS} characters", "password")
            )
        elif len(password) > MAX_PASSWORD_CHARS:
            problems.append(
                ProblemDetail(f"must be at most {MAX_PASSWORD_CHARS} characters", "password")
            )
        try:
            user_role = Role(role)
        except ValueError:
            problems.append(ProblemDetail("must be 'admin' or 'member'", "role"))
            user_role = Role.MEMBER
        name = (display_name or "").strip() or None
        if name is not None and len(name) > MAX_NAME_CHARS:
            problems.append(
                ProblemDetail(f"must be at most {MAX_NAME_CHARS} characters", "display_name")
            )
        _raise_if(problems, "invalid user")
        if await self.store.get_user_by_email(normalized) is not None:
            raise Conflict(f"A user with email {normalized} already exists")
        # argon2 takes tens of milliseconds on purpose: keep it off the event loop.
        password_hash = await asyncio.to_thread(self._hasher().hash, password)
        user = UserRecord(
            id=_new_id(),
            role=user_role.value,
            created_at=self._clock(),
            email=normalized,
            display_name=name or normalized.split("@", 1)[0],
            password_hash=password_hash,
        )
        try:
            await self.store.create_user(user)
        except ConflictError:
            # Someone created the same email between the check and the insert.
            raise Conflict(f"A user with email {normalized} already exists") from None
        return _user_info(user)

    async def get_user(self, user_id: str) -> UserInfo:
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFound("user", user_id)
        return _user_info(user)

    async def list_users(self) -> list[UserInfo]:
        """Every user, oldest first."""
        return [_user_info(user) for user in await self.store.list_users()]

    async def authenticate_password(self, email: str, password: str) -> UserInfo:
        """The user with this email and password; ``Unauthorized`` otherwise, with the same
        message and about the same time whether the email exists or not."""
        user = await self.store.get_user_by_email(email.strip().lower())
        stored = user.password_hash if user is not None and not user.disabled else None
        hasher = self._hasher()
        # Verified even without a user (against a dummy hash), so that timing does not
        # tell which emails exist.
        matched = await asyncio.to_thread(hasher.verify, stored, password)
        if not matched or user is None or stored is None:
            raise Unauthorized("Wrong email or password")
        if hasher.needs_rehash(stored):
            rehashed = await asyncio.to_thread(hasher.hash, password)
            await self.store.set_password_hash(user.id, rehashed)
        return _user_info(user)

    # -- API keys ---------------------------------------------------------------------

    async def create_api_key(
        self, user_id: str, name: str, expires_at: float | None = None
    ) -> tuple[ApiKeyInfo, str]:
        """A new key for ``user_id``, and its token: the only time the token is seen.
        ``expires_at`` (unix seconds) must be in the future. ``NotFound`` for an unknown
        or disabled user."""
        now = self._clock()
        problems: list[ProblemDetail] = []
        clean_name = name.strip()
        if not clean_name:
            problems.append(ProblemDetail("must not be empty", "name"))
        elif len(clean_name) > MAX_NAME_CHARS:
            problems.append(ProblemDetail(f"must be at most {MAX_NAME_CHARS} characters", "name"))
        if expires_at is not None and expires_at <= now:
            problems.append(ProblemDetail("must be in the future", "expires_at"))
        _raise_if(problems, "invalid API key")
        user = await self.store.get_user(user_id)
        if user is None or user.disabled:
            raise NotFound("user", user_id)
        key, token = self._new_key(user_id, clean_name, now, expires_at)
        try:
            await self.store.create_api_key(key)
        except ConflictError:
            # The user was deleted meanwhile (a key id or digest clash is beyond chance).
            raise NotFound("user", user_id) from None
        return _key_info(key), token

    async def list_api_keys(
        self, user_id: str | None, *, include_revoked: bool = False
    ) -> list[ApiKeyInfo]:
        """The keys of ``user_id`` (None: everyone's, for admins and the command line),
        oldest first, without secrets; revoked ones only with ``include_revoked``."""
        records = await self.store.list_api_keys(user_id, include_revoked=include_revoked)
        return [_key_info(record) for record in records]

    async def revoke_api_key(self, user_id: str | None, key_id: str) -> None:
        """Revoke a key of ``user_id`` (None: anyone's, for admins and the command line);
        it stops working at once. ``NotFound`` for an unknown, already revoked or someone
        else's key (a caller does not learn that others' keys exist)."""
        if not await self.store.revoke_api_key(key_id, self._clock(), user_id):
            raise NotFound("api key", key_id)
        self._touched.pop(key_id, None)
        self.forget_verified(key_id=key_id)

    def forget_verified(self, *, key_id: str | None = None, user_id: str | None = None) -> None:
        """Stop trusting the remembered keys ``key_id``, or those of ``user_id`` (neither:
        every key): their next use reads the store. For whatever changes a key or a user
        in this process (a revocation does it itself)."""
        if key_id is None and user_id is None:
            self._verified.clear()
            return
        stale = [
            token
            for token, verified in self._verified.items()
            if verified.key.id == key_id or verified.key.user_id == user_id
        ]
        for token in stale:
            del self._verified[token]

    async def authenticate_token(self, token: str | None) -> Principal:
        """Who presents ``token`` (the bearer string, without ``Bearer``). ``Unauthorized``
        says why not: missing, malformed, bad signature, expired, unknown, revoked, or a
        disabled user."""
        if token is None or not token.strip():
            raise Unauthorized("Missing API key")
        token = token.strip()
        now = self._clock()
        verified = self._verified.get(token)
        if verified is not None:
            if time.monotonic() < verified.until:
                key = verified.key
                if key.expires_at is not None and now >= key.expires_at:
                    raise Unauthorized("API key expired")
                await self._touch(key, now)
                return verified.principal
            del self._verified[token]
        try:
            claims = verify_token(self._signing_key, token, now)
        except InvalidToken as error:
            if error.problem is TokenProblem.EXPIRED:
                raise Unauthorized("API key expired") from None
            raise Unauthorized(f"Invalid API key: {error.problem.value}") from None
        found = await self.store.api_key_for_auth(claims.key_id)
        if (
            found is None
            or found.key.user_id != claims.user_id
            or not digests_match(token, found.key.token_sha256)
        ):
            raise Unauthorized("Invalid API key: unknown key")
        key = found.key
        if key.revoked_at is not None:
            raise Unauthorized("API key revoked")
        if key.expires_at is not None and now >= key.expires_at:
            raise Unauthorized("API key expired")
        if found.user_disabled:
            raise Unauthorized("User disabled")
        try:
            role = Role(found.user_role)
        except ValueError:
            raise Unauthorized(f"User has an unknown role {found.user_role!r}") from None
        await self._touch(key, now)
        principal = Principal(key.user_id, role, key.id)
        if self.auth_cache_seconds > 0:
            if len(self._verified) >= _MAX_VERIFIED:
                self._verified.clear()
            until = time.monotonic() + self.auth_cache_seconds
            self._verified[token] = _Verified(principal, key, until)
        return principal

    # -- plumbing ---------------------------------------------------------------------

    def _hasher(self) -> Passwords:
        if self._passwords is None:
            # Built on first use: it hashes once to prepare, not worth it for key-only use.
            self._passwords = Passwords()
        return self._passwords

    def _new_key(
        self, user_id: str, name: str, now: float, expires_at: float | None
    ) -> tuple[ApiKeyRecord, str]:
        key_id = _new_id()
        token = issue_token(self._signing_key, key_id, user_id, now, expires_at)
        record = ApiKeyRecord(
            id=key_id,
            user_id=user_id,
            name=name,
            prefix=token_hint(token),
            token_sha256=token_digest(token),
            created_at=now,
            # The token's exp is whole seconds (rounded up); keep the store in step.
            expires_at=None if expires_at is None else float(math.ceil(expires_at)),
        )
        return record, token

    async def _touch(self, key: ApiKeyRecord, now: float) -> None:
        last = max(key.last_used_at or 0.0, self._touched.get(key.id, 0.0))
        if now - last < TOUCH_INTERVAL_SECONDS:
            return
        if len(self._touched) >= _MAX_TOUCHED:
            self._touched.clear()
        # Noted before the write, so concurrent requests with this key do not all write.
        self._touched[key.id] = now
        try:
            await self.store.touch_api_key(key.id, now, TOUCH_INTERVAL_SECONDS)
        except StoreError as error:
            # Bookkeeping only: a request with a valid key is not refused for it.
            log.warning("could not record the use of API key %s: %s", key.id, error)


def _new_id() -> str:
    # 24 hex characters, as the ids of flow8's examples.
    return secrets.token_hex(12)


def _normalize_email(email: str, problems: list[ProblemDetail]) -> str:
    normalized = email.strip().lower()
    if len(normalized) > MAX_EMAIL_CHARS:
        problems.append(ProblemDetail(f"must be at most {MAX_EMAIL_CHARS} characters", "email"))
    elif not _EMAIL.fullmatch(normalized):
        problems.append(ProblemDetail("is not an email address", "email"))
    return normalized


def _raise_if(problems: list[ProblemDetail], what: str) -> None:
    if problems:
        raise InvalidInput(f"{what}: " + "; ".join(str(p) for p in problems), problems)


def _user_info(user: UserRecord) -> UserInfo:
    return UserInfo(
        id=user.id,
        role=Role(user.role),
        created_at=user.created_at,
        email=user.email,
        display_name=user.display_name,
        address=user.address,
        disabled=user.disabled,
        has_password=user.password_hash is not None,
    )


def _key_info(key: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def _write_private_file(path: Path, content: str) -> None:
    """Replace ``path`` with ``content``, readable by its owner only from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
