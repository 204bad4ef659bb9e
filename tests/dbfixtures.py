"""Databases for tests: a fresh SQLite file, and a fresh PostgreSQL database when
``RUNNEL_TEST_POSTGRES_URL`` is set (the PostgreSQL cases report skipped otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, pool

from runnel.store.connect import normalize_url

__all__ = ["BACKENDS", "POSTGRES_URL", "FakeClock", "postgres_database"]

POSTGRES_URL = os.environ.get("RUNNEL_TEST_POSTGRES_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RUNNEL_TEST_POSTGRES_URL is not set")
    server = normalize_url(POSTGRES_URL)
    name = f"runnel_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


class FakeClock:
    """A clock tests move by hand: ``clock.now += 60``."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
