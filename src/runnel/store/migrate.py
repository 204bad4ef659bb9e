"""Alembic migrations, run programmatically from the package (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revisions",
    "head_revisions",
    "migrate",
    "schema_is_current",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
#: Any constant will do: PostgreSQL processes starting together migrate one at a time.
_PG_MIGRATION_LOCK: Final = 0x72756E6E656C  # "runnel"


def alembic_config(connection: Connection | None = None) -> Config:
    """A config pointing into the package; ``connection`` is used by ``migrations/env.py``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision, in one transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        command.upgrade(alembic_config(connection), "head")


def head_revisions() -> set[str]:
    """The revisions this code expects."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty when it was never migrated)."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def schema_is_current(engine: Engine) -> bool:
    """True when the database is at exactly the revisions this code expects."""
    return current_revisions(engine) == head_revisions()
