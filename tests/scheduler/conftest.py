"""Scheduler fixtures: a platform (no worker, no scheduler loop) on a fresh SQLite file, and
on a fresh PostgreSQL database when ``RUNNEL_TEST_POSTGRES_URL`` is set; a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dbfixtures import BACKENDS, postgres_database
from runnel.platform import Platform, PlatformConfig
from runnel.services.accounts import Principal, Role
from runnel.store.connect import create_store_engine
from runnel.store.migrate import migrate


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runnel.db'}"
        return
    for url in postgres_database():
        engine = create_store_engine(url, "admin")
        try:
            migrate(engine)
        finally:
            engine.dispose()
        yield url


@pytest.fixture
async def platform(database_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    opened = await Platform.open(
        PlatformConfig(data_dir=tmp_path / "data", database_url=database_url, worker=False)
    )
    try:
        yield opened
    finally:
        await opened.stop()


@dataclass
class FakeClock:
    """Unix seconds that only move when a test moves them."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> float:
        self.now = moment.timestamp()
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp())


@pytest.fixture
async def member(platform: Platform) -> Principal:
    user = await platform.accounts.create_user("member@example.com", "password123")
    return Principal(user.id, Role.MEMBER)
