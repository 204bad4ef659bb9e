"""Where the embedded database lives and how SQLite connections are set up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection

from runnel.store import SqlStore, default_database_url
from runnel.store.connect import normalize_url


async def test_sqlite_connections_are_tuned(tmp_path: Path) -> None:
    store = SqlStore.open(data_dir=tmp_path)
    try:
        assert store.dialect == "sqlite"
        assert (tmp_path / "runnel.db").is_file()

        def pragmas(connection: Connection) -> tuple[object, ...]:
            return tuple(
                connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            )

        journal, synchronous, foreign_keys, busy_timeout = await store._read(pragmas)
        assert (journal, synchronous, foreign_keys) == ("wal", 1, 1)  # 1: NORMAL
        assert isinstance(busy_timeout, int)
        assert busy_timeout > 0
    finally:
        await store.close()


def test_the_default_database_is_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNEL_DATA_DIR", str(tmp_path / "data"))
    assert default_database_url() == f"sqlite:///{tmp_path / 'data' / 'runnel.db'}"
    assert default_database_url(tmp_path) == f"sqlite:///{tmp_path / 'runnel.db'}"


def test_urls_pick_our_drivers() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:////tmp/x.db").drivername == "sqlite"
    with pytest.raises(ValueError, match="file"):
        normalize_url("sqlite://")
    with pytest.raises(ValueError, match="file"):
        normalize_url("sqlite:///:memory:")
