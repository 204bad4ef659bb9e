"""Cookie sign-in: server-side sessions, and slowing down password guessing.

``login`` checks an email and password (``AccountService.authenticate_password``) and
creates a session: a random token for the cookie, stored only as a keyed digest (HMAC with
the instance key's ``sessions`` subkey), so the database never holds a usable cookie. Each
login makes a new token (the one the browser had, if any, is ended: rotation). ``logout``
deletes the row, so the cookie stops working at once in every process. Sessions expire
after ``idle_seconds`` without use and after ``max_age_seconds`` in any case.

Failed logins are counted per email and per client address within a window: after a few,
each further attempt is answered only after a growing delay, and beyond a limit it is
refused with ``TooManyAttempts`` (429) until the window has passed. A successful login
clears its email's count.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from runnel.services.accounts import AccountService, Principal, Role, UserInfo
from runnel.services.errors import ServiceError, Unauthorized
from runnel.store import SqlStore
from runnel.store.errors import ConflictError
from runnel.store.sessions import SessionRecord

__all__ = [
    "SESSION_COOKIE",
    "LoginThrottle",
    "SessionService",
    "SignedIn",
    "TooManyAttempts",
]

#: The cookie that carries a session token.
SESSION_COOKIE: Final = "runnel_session"
#: ``last_seen_at`` (and the sliding expiry) is written at most this often per session.
TOUCH_INTERVAL_SECONDS: Final = 60.0


class TooManyAttempts(ServiceError):
    """Too many failed sign-ins: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Too many failed sign-in attempts; try again in {max(1, round(retry_after))} s"
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: ``token`` goes in the cookie (and nowhere else)."""

    token: str
    user: UserInfo
    expires_at: float


class _Failures:
    __slots__ = ("count", "first")

    def __init__(self, first: float) -> None:
        self.first = first
        self.count = 0


class LoginThrottle:
    """Failed sign-ins per key (an email, an address) in a sliding ``window_seconds``.

    From the ``free_attempts``-th failure on, an attempt is delayed by ``base_delay``
    doubled per further failure (at most ``max_delay``); at ``max_failures`` it is refused
    until the window of the first failure has passed. Memory is bounded (``max_keys``).
    """

    def __init__(
        self,
        *,
        free_attempts: int = 3,
        max_failures: int = 10,
        window_seconds: float = 900.0,
        base_delay: float = 0.25,
        max_delay: float = 4.0,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_attempts = free_attempts
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, key: str, now: float) -> _Failures | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry.first >= self.window_seconds:
            del self._failures[key]
            return None
        return entry

    def check(self, keys: tuple[str, ...]) -> float:
        """The delay owed before trying (seconds); ``TooManyAttempts`` when refused."""
        now = self._clock()
        delay = 0.0
        for key in keys:
            entry = self._current(key, now)
            if entry is None:
                continue
            if entry.count >= self.max_failures:
                raise TooManyAttempts(self.window_seconds - (now - entry.first))
            over = entry.count - self.free_attempts
            if over >= 0:
                delay = max(delay, min(self.max_delay, self.base_delay * 2**over))
        return delay

    def failed(self, keys: tuple[str, ...]) -> None:
        now = self._clock()
        for key in keys:
            entry = self._current(key, now)
            if entry is None:
                entry = self._failures[key] = _Failures(now)
                if len(self._failures) > self._max_keys:
                    self._failures.popitem(last=False)
            entry.count += 1

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


class SessionService:
    """Sessions of signed-in users. ``digest_key``: ``derive_key(master, PURPOSE_SESSIONS)``."""

    def __init__(
        self,
        store: SqlStore,
        accounts: AccountService,
        digest_key: bytes,
        *,
        idle_seconds: float = 7 * 86400.0,
        max_age_seconds: float = 30 * 86400.0,
        throttle: LoginThrottle | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not digest_key:
            raise ValueError("the session digest key is empty")
        self.store = store
        self.accounts = accounts
        self._key = digest_key
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self._clock = clock
        self._sleep = sleep

    def _digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def login(
        self,
        email: str,
        password: str,
        *,
        client: str | None = None,
        previous_token: str | None = None,
    ) -> SignedIn:
        """Check the password and open a new session (ending ``previous_token``'s).
        ``Unauthorized`` for a wrong email or password; ``TooManyAttempts`` when throttled."""
        keys = (f"email:{email.strip().lower()}",) + ((f"addr:{client}",) if client else ())
        delay = self.throttle.check(keys)
        if delay > 0:
            await self._sleep(delay)
        try:
            user = await self.accounts.authenticate_password(email, password)
        except Unauthorized:
            self.throttle.failed(keys)
            raise
        self.throttle.succeeded(keys[0])
        if previous_token:
            await self.logout(previous_token)
        now = self._clock()
        token = secrets.token_urlsafe(32)
        expires_at = min(now + self.idle_seconds, now + self.max_age_seconds)
        try:
            await self.store.create_session(
                SessionRecord(
                    id=self._digest(token),
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )
        except ConflictError:  # the user was deleted meanwhile
            raise Unauthorized("Wrong email or password") from None
        return SignedIn(token, user, expires_at)

    async def logout(self, token: str) -> bool:
        """End the session of ``token``; False if there was none."""
        return await self.store.delete_session(self._digest(token))

    async def authenticate(self, token: str | None) -> Principal:
        """Who holds the session ``token``; ``Unauthorized`` if none, expired or disabled."""
        if not token:
            raise Unauthorized("Missing session")
        found = await self.store.session_for_auth(self._digest(token))
        now = self._clock()
        if found is None or found.session.expires_at <= now:
            raise Unauthorized("Session expired or signed out; sign in again")
        if found.user_disabled:
            raise Unauthorized("User disabled")
        try:
            role = Role(found.user_role)
        except ValueError:
            raise Unauthorized(f"User has an unknown role {found.user_role!r}") from None
        session = found.session
        if now - session.last_seen_at >= TOUCH_INTERVAL_SECONDS:
            expires_at = min(now + self.idle_seconds, session.created_at + self.max_age_seconds)
            await self.store.touch_session(session.id, now, expires_at, TOUCH_INTERVAL_SECONDS)
        return Principal(session.user_id, role)

    async def purge(self) -> int:
        """Delete expired sessions."""
        return await self.store.purge_sessions(self._clock())
