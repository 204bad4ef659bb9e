"""The migrations build exactly the schema of ``runnel.store.tables``, on every backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from runnel.store import SqlStore
from runnel.store.connect import create_store_engine
from runnel.store.migrate import MIGRATIONS_DIR, head_revisions, migrate, schema_is_current
from runnel.store.tables import metadata


def describe(engine: Engine) -> dict[str, Any]:
    """Everything ``inspect`` tells about our tables, in a comparable form."""
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        schema[table] = {
            "columns": [
                (
                    column["name"],
                    repr(column["type"]),
                    column["nullable"],
                    column.get("default"),
                )
                for column in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    tuple(sorted(fk.get("options", {}).items())),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), index["unique"])
                for index in inspector.get_indexes(table)
            ),
            "unique": inspector.get_unique_constraints(table),
        }
    return schema


def test_migrations_build_the_tables_schema(database_url: str) -> None:
    engine = create_store_engine(database_url, "writer")
    try:
        metadata.create_all(engine)
        from_tables = describe(engine)
        metadata.drop_all(engine)
        assert describe(engine) == {}

        assert not schema_is_current(engine)
        migrate(engine)
        assert schema_is_current(engine)
        from_migrations = describe(engine)

        assert set(from_migrations) == {table.name for table in metadata.sorted_tables}
        assert from_migrations == from_tables
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_open_migrates(database_url: str) -> None:
    engine = create_store_engine(database_url, "writer")
    try:
        migrate(engine)
        migrate(engine)
        assert schema_is_current(engine)
    finally:
        engine.dispose()


async def test_open_without_migrate_reports_an_old_schema(database_url: str) -> None:
    store = SqlStore.open(database_url, migrate=False)
    try:
        assert not store.schema_is_current()
        store.migrate()
        assert store.schema_is_current()
    finally:
        await store.close()


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    # One line of history: a branch would need a merge revision.
    assert len(head_revisions()) == 1
