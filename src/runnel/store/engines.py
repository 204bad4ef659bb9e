"""Flowork engines: the registry, who each engine is shared with, and parked token claims.

The hot reads are ``engine_by_token_digest`` (an engine authenticating) and
``is_engine_shared_with`` (a proxied request): one indexed read each. Writes are rare and
go through the group-commit writer; the ones that must be atomic (rotating a token and
parking it for a claim; creating the one embedded engine) are single writer calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "ClaimOutcome",
    "EngineRecord",
    "EngineShareRecord",
    "EngineStatements",
    "EnginesMixin",
    "ParkedClaim",
    "SharedEngineRecord",
    "UserRef",
]

_T = TypeVar("_T")

#: Any constant will do: PostgreSQL processes starting together create one embedded engine.
_PG_EMBEDDED_LOCK: Final = 0x72756E6E656C04


@dataclass(frozen=True, slots=True)
class EngineRecord:
    """A row of ``engines``. Times are unix seconds."""

    id: str
    owner_id: str
    name: str
    token_sha256: str
    created_at: float
    updated_at: float
    embedded: bool = False
    internal_api_url: str | None = None
    last_seen_at: float | None = None


@dataclass(frozen=True, slots=True)
class UserRef:
    """What engine and share listings show of a user."""

    id: str
    username: str | None
    email: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class SharedEngineRecord:
    """An engine shared with someone, with its owner."""

    engine: EngineRecord
    owner: UserRef
    shared_at: float


@dataclass(frozen=True, slots=True)
class EngineShareRecord:
    """One user an engine is shared with."""

    engine_id: str
    user: UserRef
    shared_at: float


@dataclass(frozen=True, slots=True)
class ParkedClaim:
    """A token waiting under a request id for the engine's dashboard to claim it."""

    engine_id: str
    token_sealed: str
    expires_at: float


class ClaimOutcome(StrEnum):
    PARKED = "parked"
    #: Another token waits under that request id and its window is still open.
    REQUEST_TAKEN = "request taken"
    NO_ENGINE = "no engine"


# -- statements ------------------------------------------------------------------------

_ENGINE_COLUMNS: Final = (
    "id, owner_id, name, token_sha256, created_at, updated_at, embedded, internal_api_url,"
    " last_seen_at"
)
_E_COLUMNS: Final = ", ".join(f"e.{column.strip()}" for column in _ENGINE_COLUMNS.split(","))
_USER_REF: Final = "u.id, u.display_name, u.email, u.address"

INSERT_ENGINE: Final = f"""
INSERT INTO engines ({_ENGINE_COLUMNS})
VALUES (:id, :owner_id, :name, :token_sha256, :created_at, :updated_at, :embedded,
        :internal_api_url, :last_seen_at)
"""
SELECT_ENGINE: Final = f"SELECT {_ENGINE_COLUMNS} FROM engines WHERE id = :id"
SELECT_ENGINE_BY_TOKEN: Final = (
    f"SELECT {_ENGINE_COLUMNS} FROM engines WHERE token_sha256 = :token_sha256"
)
SELECT_EMBEDDED: Final = (
    f"SELECT {_ENGINE_COLUMNS} FROM engines WHERE embedded ORDER BY created_at, id LIMIT 1"
)
LIST_OWNED: Final = (
    f"SELECT {_ENGINE_COLUMNS} FROM engines WHERE owner_id = :owner_id ORDER BY created_at, id"
)
LIST_SHARED_WITH: Final = f"""
SELECT {_E_COLUMNS}, {_USER_REF}, s.created_at
FROM engine_shares s
JOIN engines e ON e.id = s.engine_id
JOIN users u ON u.id = e.owner_id
WHERE s.user_id = :user_id
ORDER BY e.name, e.id
"""
RENAME_ENGINE: Final = "UPDATE engines SET name = :name, updated_at = :now WHERE id = :id"
SET_TOKEN: Final = (
    "UPDATE engines SET token_sha256 = :token_sha256, updated_at = :now WHERE id = :id"
)
DELETE_ENGINE: Final = "DELETE FROM engines WHERE id = :id"
RECORD_SEEN: Final = """
UPDATE engines SET last_seen_at = :now, internal_api_url = COALESCE(:url, internal_api_url)
WHERE id = :id
"""

INSERT_SHARE: Final = """
INSERT INTO engine_shares (engine_id, user_id, created_at) VALUES (:engine_id, :user_id, :now)
ON CONFLICT (engine_id, user_id) DO NOTHING
"""
DELETE_SHARE: Final = (
    "DELETE FROM engine_shares WHERE engine_id = :engine_id AND user_id = :user_id"
)
LIST_SHARES: Final = f"""
SELECT {_USER_REF}, s.created_at
FROM engine_shares s JOIN users u ON u.id = s.user_id
WHERE s.engine_id = :engine_id
ORDER BY s.created_at, u.id
"""
IS_SHARED: Final = "SELECT 1 FROM engine_shares WHERE engine_id = :engine_id AND user_id = :user_id"
# The owner and every user the engine is shared with, if they have an address and are not
# disabled.
AUTHORIZED_ADDRESSES: Final = """
SELECT u.address FROM engines e JOIN users u ON u.id = e.owner_id
WHERE e.id = :engine_id AND u.address IS NOT NULL AND NOT u.disabled
UNION
SELECT u.address FROM engine_shares s JOIN users u ON u.id = s.user_id
WHERE s.engine_id = :engine_id AND u.address IS NOT NULL AND NOT u.disabled
"""

DELETE_EXPIRED_CLAIM: Final = (
    "DELETE FROM engine_claims WHERE request_id = :request_id AND expires_at < :now"
)
INSERT_CLAIM: Final = """
INSERT INTO engine_claims (request_id, engine_id, token_sealed, created_at, expires_at)
VALUES (:request_id, :engine_id, :token_sealed, :now, :expires_at)
ON CONFLICT (request_id) DO NOTHING
"""
TAKE_CLAIM: Final = """
DELETE FROM engine_claims WHERE request_id = :request_id
RETURNING engine_id, token_sealed, expires_at
"""
PRUNE_CLAIMS: Final = "DELETE FROM engine_claims WHERE expires_at < :now"


class EngineStatements:
    """The statements above, rendered for one dialect's driver."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect_name = dialect.name
        render = renderer(dialect)
        self.insert_engine = render(INSERT_ENGINE)
        self.select_engine = render(SELECT_ENGINE)
        self.select_engine_by_token = render(SELECT_ENGINE_BY_TOKEN)
        self.select_embedded = render(SELECT_EMBEDDED)
        self.list_owned = render(LIST_OWNED)
        self.list_shared_with = render(LIST_SHARED_WITH)
        self.rename_engine = render(RENAME_ENGINE)
        self.set_token = render(SET_TOKEN)
        self.delete_engine = render(DELETE_ENGINE)
        self.record_seen = render(RECORD_SEEN)
        self.insert_share = render(INSERT_SHARE)
        self.delete_share = render(DELETE_SHARE)
        self.list_shares = render(LIST_SHARES)
        self.is_shared = render(IS_SHARED)
        self.authorized_addresses = render(AUTHORIZED_ADDRESSES)
        self.delete_expired_claim = render(DELETE_EXPIRED_CLAIM)
        self.insert_claim = render(INSERT_CLAIM)
        self.take_claim = render(TAKE_CLAIM)
        self.prune_claims = render(PRUNE_CLAIMS)


# -- rows --------------------------------------------------------------------------------


def _engine_row(engine: EngineRecord) -> dict[str, Any]:
    return {
        "id": engine.id,
        "owner_id": engine.owner_id,
        "name": engine.name,
        "token_sha256": engine.token_sha256,
        "created_at": engine.created_at,
        "updated_at": engine.updated_at,
        "embedded": engine.embedded,
        "internal_api_url": engine.internal_api_url,
        "last_seen_at": engine.last_seen_at,
    }


def _engine_from(row: Any, at: int = 0) -> EngineRecord:
    return EngineRecord(
        id=row[at],
        owner_id=row[at + 1],
        name=row[at + 2],
        token_sha256=row[at + 3],
        created_at=float(row[at + 4]),
        updated_at=float(row[at + 5]),
        # SQLite hands booleans back as 0/1.
        embedded=bool(row[at + 6]),
        internal_api_url=row[at + 7],
        last_seen_at=None if row[at + 8] is None else float(row[at + 8]),
    )


def _user_ref_from(row: Any, at: int) -> UserRef:
    return UserRef(id=row[at], username=row[at + 1], email=row[at + 2], address=row[at + 3])


def _first(reader: Reader, sql: str, params: Mapping[str, Any]) -> Any:
    return reader.exec_driver_sql(sql, dict(params)).first()


def _changed(cursor: DBAPICursor, sql: str, params: Mapping[str, Any]) -> bool:
    cursor.execute(sql, dict(params))
    return bool(cursor.rowcount == 1)


def _create_embedded(
    cursor: DBAPICursor, sql: EngineStatements, engine: EngineRecord
) -> EngineRecord:
    if sql.dialect_name == "postgresql":
        # Held to the end of the transaction: processes starting together create one.
        cursor.execute(f"SELECT pg_advisory_xact_lock({_PG_EMBEDDED_LOCK})")
    # SQLite: the writer's BEGIN IMMEDIATE already serialises writers across processes.
    cursor.execute(sql.select_embedded)
    existing = cursor.fetchall()
    if existing:
        return _engine_from(existing[0])
    cursor.execute(sql.insert_engine, _engine_row(engine))
    return engine


def _rotate_and_park(
    cursor: DBAPICursor,
    sql: EngineStatements,
    engine_id: str,
    token_sha256: str,
    now: float,
    claim: tuple[str, str, float] | None,
) -> ClaimOutcome:
    if claim is not None:
        request_id, sealed, expires_at = claim
        cursor.execute(sql.delete_expired_claim, {"request_id": request_id, "now": now})
        cursor.execute(
            sql.insert_claim,
            {
                "request_id": request_id,
                "engine_id": engine_id,
                "token_sealed": sealed,
                "now": now,
                "expires_at": expires_at,
            },
        )
        if cursor.rowcount != 1:
            # The request id is taken: leave the engine's token as it was.
            return ClaimOutcome.REQUEST_TAKEN
    params = {"id": engine_id, "token_sha256": token_sha256, "now": now}
    if not _changed(cursor, sql.set_token, params):
        return ClaimOutcome.NO_ENGINE
    return ClaimOutcome.PARKED


# -- the SqlStore methods ----------------------------------------------------------------


class EnginesMixin:
    """Engines, their shares and claims, as methods of ``SqlStore``. ``ConflictError`` for
    a duplicate id or token digest, or a reference to an unknown user or engine."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _engine_statements: EngineStatements | None = None

    @property
    def _engines_sql(self) -> EngineStatements:
        if self._engine_statements is None:
            self._engine_statements = EngineStatements(self._writer_engine.dialect)
        return self._engine_statements

    # -- the registry -----------------------------------------------------------------

    async def create_engine(self, engine: EngineRecord) -> None:
        """Insert an engine."""
        sql, row = self._engines_sql, _engine_row(engine)
        await self._call(lambda cursor: _changed(cursor, sql.insert_engine, row))

    async def create_embedded_engine(self, engine: EngineRecord) -> EngineRecord:
        """Insert ``engine`` as the installation's embedded engine unless there is one
        (also when several processes try at once); returns the one that exists."""
        sql = self._engines_sql
        created: EngineRecord = await self._call(
            lambda cursor: _create_embedded(cursor, sql, engine)
        )
        return created

    async def get_engine(self, engine_id: str) -> EngineRecord | None:
        sql = self._engines_sql
        row = await self._read(lambda r: _first(r, sql.select_engine, {"id": engine_id}))
        return None if row is None else _engine_from(row)

    async def engine_by_token_digest(self, token_sha256: str) -> EngineRecord | None:
        sql = self._engines_sql
        params = {"token_sha256": token_sha256}
        row = await self._read(lambda r: _first(r, sql.select_engine_by_token, params))
        return None if row is None else _engine_from(row)

    async def embedded_engine(self) -> EngineRecord | None:
        sql = self._engines_sql
        row = await self._read(lambda r: _first(r, sql.select_embedded, {}))
        return None if row is None else _engine_from(row)

    async def list_engines_owned_by(self, owner_id: str) -> list[EngineRecord]:
        """The engines of ``owner_id``, oldest first."""
        sql = self._engines_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.list_owned, {"owner_id": owner_id}).all()
        )
        return [_engine_from(row) for row in rows]

    async def list_engines_shared_with(self, user_id: str) -> list[SharedEngineRecord]:
        """The engines shared with ``user_id``, with their owners, by name."""
        sql = self._engines_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.list_shared_with, {"user_id": user_id}).all()
        )
        return [
            SharedEngineRecord(_engine_from(row), _user_ref_from(row, 9), float(row[13]))
            for row in rows
        ]

    async def rename_engine(self, engine_id: str, name: str, now: float) -> bool:
        sql = self._engines_sql
        params = {"id": engine_id, "name": name, "now": now}
        return await self._call(lambda cursor: _changed(cursor, sql.rename_engine, params))

    async def set_engine_token(self, engine_id: str, token_sha256: str, now: float) -> bool:
        """Replace an engine's token digest (the old token stops working at once)."""
        sql = self._engines_sql
        outcome: ClaimOutcome = await self._call(
            lambda cursor: _rotate_and_park(cursor, sql, engine_id, token_sha256, now, None)
        )
        return outcome is ClaimOutcome.PARKED

    async def delete_engine(self, engine_id: str) -> bool:
        """Delete an engine with its shares and claims."""
        sql = self._engines_sql
        return await self._call(
            lambda cursor: _changed(cursor, sql.delete_engine, {"id": engine_id})
        )

    async def record_engine_seen(
        self, engine_id: str, now: float, internal_api_url: str | None = None
    ) -> bool:
        """Note that an engine was heard from (and where it answers, when given)."""
        sql = self._engines_sql
        params = {"id": engine_id, "now": now, "url": internal_api_url}
        return await self._call(lambda cursor: _changed(cursor, sql.record_seen, params))

    # -- shares -----------------------------------------------------------------------

    async def add_engine_share(self, engine_id: str, user_id: str, now: float) -> bool:
        """Share an engine with a user; False if it already was."""
        sql = self._engines_sql
        params = {"engine_id": engine_id, "user_id": user_id, "now": now}
        return await self._call(lambda cursor: _changed(cursor, sql.insert_share, params))

    async def remove_engine_share(self, engine_id: str, user_id: str) -> bool:
        sql = self._engines_sql
        params = {"engine_id": engine_id, "user_id": user_id}
        return await self._call(lambda cursor: _changed(cursor, sql.delete_share, params))

    async def list_engine_shares(self, engine_id: str) -> list[EngineShareRecord]:
        """Who an engine is shared with, in the order they got it."""
        sql = self._engines_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.list_shares, {"engine_id": engine_id}).all()
        )
        return [EngineShareRecord(engine_id, _user_ref_from(row, 0), float(row[4])) for row in rows]

    async def is_engine_shared_with(self, engine_id: str, user_id: str) -> bool:
        sql = self._engines_sql
        params = {"engine_id": engine_id, "user_id": user_id}
        return await self._read(lambda r: _first(r, sql.is_shared, params) is not None)

    async def engine_authorized_addresses(self, engine_id: str) -> list[str]:
        """The addresses of the engine's owner and of the users it is shared with (those
        that have one and are not disabled), sorted."""
        sql = self._engines_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.authorized_addresses, {"engine_id": engine_id}).all()
        )
        return sorted({str(row[0]) for row in rows})

    # -- claims -----------------------------------------------------------------------

    async def rotate_engine_token_for_claim(
        self,
        engine_id: str,
        token_sha256: str,
        now: float,
        request_id: str,
        token_sealed: str,
        expires_at: float,
    ) -> ClaimOutcome:
        """In one transaction: park the new token under ``request_id`` and make it the
        engine's token. Nothing changes if an unexpired claim holds that request id."""
        sql = self._engines_sql
        claim = (request_id, token_sealed, expires_at)
        outcome: ClaimOutcome = await self._call(
            lambda cursor: _rotate_and_park(cursor, sql, engine_id, token_sha256, now, claim)
        )
        return outcome

    async def take_engine_claim(self, request_id: str, now: float) -> ParkedClaim | None:
        """Remove and return the claim parked under ``request_id``; None if there is none
        or its window closed (it is removed either way: a claim is taken once)."""
        sql = self._engines_sql

        def take(cursor: DBAPICursor) -> Any:
            cursor.execute(sql.take_claim, {"request_id": request_id})
            return cursor.fetchone()

        row = await self._call(take)
        if row is None or float(row[2]) < now:
            return None
        return ParkedClaim(engine_id=row[0], token_sealed=row[1], expires_at=float(row[2]))

    async def prune_engine_claims(self, now: float) -> int:
        sql = self._engines_sql

        def prune(cursor: DBAPICursor) -> int:
            cursor.execute(sql.prune_claims, {"now": now})
            return max(int(cursor.rowcount), 0)

        return await self._call(prune)
