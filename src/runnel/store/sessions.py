"""Server-side sessions of signed-in users (flow8's cookie sign-in).

A row is keyed by a keyed digest of the cookie value (the services make it), never the
cookie itself. Reading a session joins its user, so a disabled user is refused at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from runnel.store._repo import RepositoryMixin

__all__ = ["SessionAuth", "SessionRecord", "SessionsMixin"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A row of ``sessions``. Times are unix seconds."""

    id: str
    user_id: str
    created_at: float
    last_seen_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class SessionAuth:
    """A session with its user's role and state."""

    session: SessionRecord
    user_role: str
    user_disabled: bool


_INSERT: Final = """
INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at)
VALUES (:id, :user_id, :created_at, :last_seen_at, :expires_at)
"""
_SELECT_AUTH: Final = """
SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, u.role, u.disabled
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = :id
"""
_TOUCH: Final = """
UPDATE sessions SET last_seen_at = :now, expires_at = :expires_at
WHERE id = :id AND last_seen_at <= :stale_before
"""
_DELETE: Final = "DELETE FROM sessions WHERE id = :id"
_DELETE_USER: Final = "DELETE FROM sessions WHERE user_id = :user_id"
_PURGE: Final = "DELETE FROM sessions WHERE expires_at <= :now"


class SessionsMixin(RepositoryMixin):
    """Sessions, as methods of ``SqlStore``."""

    async def create_session(self, session: SessionRecord) -> None:
        """Insert a session (``ConflictError`` for an unknown user)."""
        await self._change(
            _INSERT,
            {
                "id": session.id,
                "user_id": session.user_id,
                "created_at": session.created_at,
                "last_seen_at": session.last_seen_at,
                "expires_at": session.expires_at,
            },
        )

    async def session_for_auth(self, session_id: str) -> SessionAuth | None:
        row = await self._fetch_one(_SELECT_AUTH, {"id": session_id})
        if row is None:
            return None
        record = SessionRecord(
            id=row[0],
            user_id=row[1],
            created_at=float(row[2]),
            last_seen_at=float(row[3]),
            expires_at=float(row[4]),
        )
        return SessionAuth(record, user_role=row[5], user_disabled=bool(row[6]))

    async def touch_session(
        self, session_id: str, now: float, expires_at: float, min_interval: float
    ) -> bool:
        """Slide a session's expiry, at most once per ``min_interval`` seconds."""
        changed = await self._change(
            _TOUCH,
            {
                "id": session_id,
                "now": now,
                "expires_at": expires_at,
                "stale_before": now - min_interval,
            },
        )
        return changed == 1

    async def delete_session(self, session_id: str) -> bool:
        return await self._change(_DELETE, {"id": session_id}) == 1

    async def delete_user_sessions(self, user_id: str) -> int:
        return await self._change(_DELETE_USER, {"user_id": user_id})

    async def purge_sessions(self, now: float) -> int:
        """Delete expired sessions; how many."""
        return await self._change(_PURGE, {"now": now})
