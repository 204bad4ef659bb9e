"""Database URLs and SQLAlchemy engines for SQLite and PostgreSQL.

SQLite gets what makes it fast and safe with one writer and many readers: WAL journal,
``synchronous=NORMAL`` (durable at each checkpoint of the WAL, never corrupt), foreign keys,
a busy timeout, and transactions that SQLAlchemy controls (the stdlib ``sqlite3`` module
would otherwise open them implicitly, and not at all for DDL or reads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Literal

from platformdirs import user_data_dir
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

__all__ = [
    "DATABASE_FILE",
    "Role",
    "create_store_engine",
    "default_data_dir",
    "default_database_url",
    "normalize_url",
]

DATABASE_FILE: Final = "runnel.db"
#: How long an SQLite connection waits for a lock held by another connection.
BUSY_TIMEOUT_MS: Final = 10_000

#: ``writer``: the group-commit thread's engine; the writer begins and commits on the DBAPI
#: connection itself. ``reader``: pooled reads, each in one snapshot (a deferred BEGIN).
#: ``admin``: migrations, whose transactions take SQLite's write lock at BEGIN (a deferred
#: one could fail to upgrade later); unpooled.
Role = Literal["writer", "reader", "admin"]


def default_data_dir() -> Path:
    """``$RUNNEL_DATA_DIR``, else the per-user data folder (e.g. ``~/.local/share/runnel``)."""
    configured = os.environ.get("RUNNEL_DATA_DIR")
    return Path(configured) if configured else Path(user_data_dir("runnel", appauthor=False))


def default_database_url(data_dir: str | Path | None = None) -> str:
    """``sqlite:///<data dir>/runnel.db``."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    return f"sqlite:///{directory.expanduser().resolve() / DATABASE_FILE}"


def normalize_url(url: str) -> URL:
    """Pick the drivers we ship: ``postgresql://`` means psycopg 3, ``sqlite://`` pysqlite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # The writer thread and the readers hold separate connections, which would each see
        # their own empty in-memory database.
        raise ValueError("the SQLite store needs a file; use runnel.testing for in-memory tests")
    return parsed


def create_store_engine(url: str | URL, role: Role) -> Engine:
    """An engine for ``role`` (see ``Role``), configured for its dialect."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, role)
    if role == "admin":
        return create_engine(parsed, poolclass=NullPool)
    if role == "writer":
        # The writer thread holds one connection; one more covers a reconnect.
        return create_engine(parsed, pool_pre_ping=True, pool_size=1, max_overflow=1)
    # One snapshot per read, as SQLite's readers get: a count and its page agree.
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=8,
        isolation_level="REPEATABLE READ",
    )


def _sqlite_engine(url: URL, role: Role) -> Engine:
    assert url.database is not None
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        # Named parameters let the same row dicts feed sqlite3 and psycopg.
        "paramstyle": "named",
        # Readers run in asyncio.to_thread workers, so pooled connections change threads.
        "connect_args": {"check_same_thread": False},
    }
    if role == "admin":
        options["poolclass"] = NullPool
    else:
        options["pool_size"] = 1 if role == "writer" else 8
        options["max_overflow"] = 1 if role == "writer" else 8
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" event below issues BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    if role != "writer":
        begin = "BEGIN IMMEDIATE" if role == "admin" else "BEGIN"

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

    return engine
