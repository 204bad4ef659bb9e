"""Users and API keys: records, queries, and the ``AccountsMixin`` that puts them on
``SqlStore``.

Account writes are rare (a user created, a key issued or revoked, a key's ``last_used_at``
at most once a minute), so they go through the group-commit writer like everything else.
The hot read is ``api_key_for_auth``, made on every authenticated request: one indexed
join by primary key, so that a revoked key is refused at once, in every process.

The store keeps what it is given: the services layer normalises emails, hashes passwords
and tokens, and makes ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Dialect, text
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "AccountStatements",
    "AccountsMixin",
    "ApiKeyAuth",
    "ApiKeyRecord",
    "UserRecord",
]

_T = TypeVar("_T")

#: Any constant will do: PostgreSQL processes starting together create one owner.
_PG_OWNER_LOCK: Final = 0x72756E6E656C02


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A row of ``users``. Times are unix seconds."""

    id: str
    role: str
    created_at: float
    email: str | None = None
    display_name: str | None = None
    password_hash: str | None = None
    address: str | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A row of ``api_keys``: the key's digest and metadata, never the token."""

    id: str
    user_id: str
    name: str
    prefix: str
    token_sha256: str
    created_at: float
    last_used_at: float | None = None
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyAuth:
    """What authenticating a request needs: the key and its user's role and state."""

    key: ApiKeyRecord
    user_role: str
    user_disabled: bool


# -- statements ------------------------------------------------------------------------

_USER_COLUMNS: Final = "id, email, display_name, password_hash, role, address, created_at, disabled"
_KEY_COLUMNS: Final = (
    "id, user_id, name, prefix, token_sha256, created_at, last_used_at, expires_at, revoked_at"
)

INSERT_USER: Final = f"""
INSERT INTO users ({_USER_COLUMNS})
VALUES (:id, :email, :display_name, :password_hash, :role, :address, :created_at, :disabled)
"""

INSERT_API_KEY: Final = f"""
INSERT INTO api_keys ({_KEY_COLUMNS})
VALUES (:id, :user_id, :name, :prefix, :token_sha256, :created_at, :last_used_at,
        :expires_at, :revoked_at)
"""

ANY_USER: Final = "SELECT id FROM users LIMIT 1"
COUNT_USERS: Final = "SELECT COUNT(*) FROM users"
SELECT_USER: Final = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"
SELECT_USER_BY_EMAIL: Final = f"SELECT {_USER_COLUMNS} FROM users WHERE email = :email"
SELECT_USER_BY_ADDRESS: Final = f"SELECT {_USER_COLUMNS} FROM users WHERE address = :address"
LIST_USERS: Final = f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id"
UPDATE_PASSWORD_HASH: Final = "UPDATE users SET password_hash = :password_hash WHERE id = :id"
SET_USER_DISABLED: Final = "UPDATE users SET disabled = :disabled WHERE id = :id"

SELECT_API_KEY: Final = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = :id"
SELECT_API_KEY_AUTH: Final = """
SELECT k.id, k.user_id, k.name, k.prefix, k.token_sha256, k.created_at, k.last_used_at,
       k.expires_at, k.revoked_at, u.role, u.disabled
FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.id = :id
"""
# {where} is filled per listing: by user or not, with revoked keys or not.
LIST_API_KEYS: Final = f"SELECT {_KEY_COLUMNS} FROM api_keys {{where}} ORDER BY created_at, id"

REVOKE_API_KEY: Final = """
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL
"""
REVOKE_USER_API_KEY: Final = """
UPDATE api_keys SET revoked_at = :now
WHERE id = :id AND user_id = :user_id AND revoked_at IS NULL
"""
# Written at most once per interval per key, however many requests use it.
TOUCH_API_KEY: Final = """
UPDATE api_keys SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at <= :stale_before)
"""


class AccountStatements:
    """The statements above, rendered for one dialect's driver (as ``Statements`` does)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect_name = dialect.name

        def render(sql: str) -> str:
            return str(text(sql.strip()).compile(dialect=dialect))

        self.insert_user = render(INSERT_USER)
        self.insert_api_key = render(INSERT_API_KEY)
        self.any_user = render(ANY_USER)
        self.count_users = render(COUNT_USERS)
        self.select_user = render(SELECT_USER)
        self.select_user_by_email = render(SELECT_USER_BY_EMAIL)
        self.select_user_by_address = render(SELECT_USER_BY_ADDRESS)
        self.list_users = render(LIST_USERS)
        self.update_password_hash = render(UPDATE_PASSWORD_HASH)
        self.set_user_disabled = render(SET_USER_DISABLED)
        self.select_api_key = render(SELECT_API_KEY)
        self.select_api_key_auth = render(SELECT_API_KEY_AUTH)
        self.revoke_api_key = render(REVOKE_API_KEY)
        self.revoke_user_api_key = render(REVOKE_USER_API_KEY)
        self.touch_api_key = render(TOUCH_API_KEY)
        self.list_api_keys: dict[tuple[bool, bool], str] = {}
        for by_user in (False, True):
            for include_revoked in (False, True):
                clauses = ["user_id = :user_id"] if by_user else []
                if not include_revoked:
                    clauses.append("revoked_at IS NULL")
                where = "WHERE " + " AND ".join(clauses) if clauses else ""
                self.list_api_keys[by_user, include_revoked] = render(
                    LIST_API_KEYS.format(where=where)
                )


# -- queries (reads take a pooled connection, writes the writer's cursor) ---------------


def _user_row(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "password_hash": user.password_hash,
        "role": user.role,
        "address": user.address,
        "created_at": user.created_at,
        "disabled": user.disabled,
    }


def _key_row(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "prefix": key.prefix,
        "token_sha256": key.token_sha256,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    }


def _user_from(row: Any) -> UserRecord:
    return UserRecord(
        id=row[0],
        email=row[1],
        display_name=row[2],
        password_hash=row[3],
        role=row[4],
        address=row[5],
        created_at=float(row[6]),
        # SQLite hands booleans back as 0/1.
        disabled=bool(row[7]),
    )


def _key_from(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row[0],
        user_id=row[1],
        name=row[2],
        prefix=row[3],
        token_sha256=row[4],
        created_at=float(row[5]),
        last_used_at=_float_or_none(row[6]),
        expires_at=_float_or_none(row[7]),
        revoked_at=_float_or_none(row[8]),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _one(connection: Reader, sql: str, params: Mapping[str, Any]) -> Any:
    return connection.exec_driver_sql(sql, dict(params)).first()


def create_owner(
    cursor: DBAPICursor, sql: AccountStatements, user: UserRecord, key: ApiKeyRecord
) -> bool:
    """Insert ``user`` and ``key`` if there is no user at all; False if there was one."""
    if sql.dialect_name == "postgresql":
        # Two processes starting on an empty database would both see no user; the lock
        # (held to the end of the transaction) lets only the first insert.
        cursor.execute(f"SELECT pg_advisory_xact_lock({_PG_OWNER_LOCK})")
    # SQLite: the writer's BEGIN IMMEDIATE already serialises writers across processes.
    cursor.execute(sql.any_user)
    if cursor.fetchall():
        return False
    cursor.execute(sql.insert_user, _user_row(user))
    cursor.execute(sql.insert_api_key, _key_row(key))
    return True


# -- the SqlStore methods ---------------------------------------------------------------


class AccountsMixin:
    """Users and API keys, as methods of ``SqlStore``. Raises ``ConflictError`` for a
    duplicate id, email, address or token digest, and for a key of an unknown user."""

    if TYPE_CHECKING:
        # Provided by SqlStore.
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _account_statements: AccountStatements | None = None

    @property
    def _accounts_sql(self) -> AccountStatements:
        statements = self._account_statements
        if statements is None:
            statements = AccountStatements(self._writer_engine.dialect)
            self._account_statements = statements
        return statements

    # -- users ------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None:
        """Insert a user."""
        sql = self._accounts_sql
        row = _user_row(user)
        await self._call(lambda cursor: _execute(cursor, sql.insert_user, row))

    async def create_owner(self, user: UserRecord, key: ApiKeyRecord) -> bool:
        """Insert the first user and its key in one transaction, only if there is no user
        yet (also when several processes try at once). False if there already was one."""
        sql = self._accounts_sql
        created: bool = await self._call(lambda cursor: create_owner(cursor, sql, user, key))
        return created

    async def has_users(self) -> bool:
        sql = self._accounts_sql
        return await self._read(lambda c: _one(c, sql.any_user, {}) is not None)

    async def count_users(self) -> int:
        sql = self._accounts_sql
        return await self._read(lambda c: int(c.exec_driver_sql(sql.count_users).scalar_one()))

    async def get_user(self, user_id: str) -> UserRecord | None:
        sql = self._accounts_sql
        row = await self._read(lambda c: _one(c, sql.select_user, {"id": user_id}))
        return None if row is None else _user_from(row)

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        """By the email exactly as stored (the services store it lower-cased)."""
        sql = self._accounts_sql
        row = await self._read(lambda c: _one(c, sql.select_user_by_email, {"email": email}))
        return None if row is None else _user_from(row)

    async def get_user_by_address(self, address: str) -> UserRecord | None:
        sql = self._accounts_sql
        row = await self._read(lambda c: _one(c, sql.select_user_by_address, {"address": address}))
        return None if row is None else _user_from(row)

    async def list_users(self) -> list[UserRecord]:
        """Every user, oldest first."""
        sql = self._accounts_sql
        rows = await self._read(lambda c: c.exec_driver_sql(sql.list_users).all())
        return [_user_from(row) for row in rows]

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        sql = self._accounts_sql
        params = {"id": user_id, "password_hash": password_hash}
        return await self._call(
            lambda cursor: _changed_one(cursor, sql.update_password_hash, params)
        )

    async def set_user_disabled(self, user_id: str, disabled: bool) -> bool:
        """Disable or enable a user (a disabled user's keys stop working at once); False if
        there is no such user."""
        sql = self._accounts_sql
        params = {"id": user_id, "disabled": disabled}
        return await self._call(lambda cursor: _changed_one(cursor, sql.set_user_disabled, params))

    # -- API keys ---------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord) -> None:
        """Insert a key (``ConflictError`` if its user does not exist)."""
        sql = self._accounts_sql
        row = _key_row(key)
        await self._call(lambda cursor: _execute(cursor, sql.insert_api_key, row))

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        sql = self._accounts_sql
        row = await self._read(lambda c: _one(c, sql.select_api_key, {"id": key_id}))
        return None if row is None else _key_from(row)

    async def api_key_for_auth(self, key_id: str) -> ApiKeyAuth | None:
        """The key with its user's role and state, in one query; None if unknown."""
        sql = self._accounts_sql
        row = await self._read(lambda c: _one(c, sql.select_api_key_auth, {"id": key_id}))
        if row is None:
            return None
        return ApiKeyAuth(key=_key_from(row), user_role=row[9], user_disabled=bool(row[10]))

    async def list_api_keys(
        self, user_id: str | None = None, *, include_revoked: bool = False
    ) -> list[ApiKeyRecord]:
        """The keys of ``user_id`` (None: of everyone), oldest first; revoked ones only
        with ``include_revoked``."""
        statement = self._accounts_sql.list_api_keys[user_id is not None, include_revoked]
        params = {"user_id": user_id} if user_id is not None else {}
        rows = await self._read(lambda c: c.exec_driver_sql(statement, params).all())
        return [_key_from(row) for row in rows]

    async def revoke_api_key(self, key_id: str, now: float, user_id: str | None = None) -> bool:
        """Revoke a key (only ``user_id``'s, unless None). False if there is no such key
        (of that user) or it was already revoked."""
        sql = self._accounts_sql
        if user_id is None:
            statement, params = sql.revoke_api_key, {"id": key_id, "now": now}
        else:
            statement = sql.revoke_user_api_key
            params = {"id": key_id, "now": now, "user_id": user_id}
        return await self._call(lambda cursor: _changed_one(cursor, statement, params))

    async def touch_api_key(self, key_id: str, now: float, min_interval: float = 60.0) -> bool:
        """Set ``last_used_at`` to ``now`` unless it was set less than ``min_interval``
        seconds before; True if it was written."""
        sql = self._accounts_sql
        params = {"id": key_id, "now": now, "stale_before": now - min_interval}
        return await self._call(lambda cursor: _changed_one(cursor, sql.touch_api_key, params))


def _changed_one(cursor: DBAPICursor, sql: str, params: Mapping[str, Any]) -> bool:
    cursor.execute(sql, dict(params))
    return bool(cursor.rowcount == 1)


def _execute(cursor: DBAPICursor, sql: str, params: Mapping[str, Any]) -> None:
    cursor.execute(sql, dict(params))
