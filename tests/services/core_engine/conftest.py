"""A real SQLite platform with its embedded engine's ``CoreEngine``, owned by a wallet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowork_keys import Wallet
from runnel.platform import Platform, PlatformConfig
from services.core_engine.engine_setup import Setup


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    root = tmp_path / "root"
    config = PlatformConfig(data_dir=tmp_path / "data", worker=False, browse_roots=(root,))
    platform = await Platform.open(config)
    try:
        await platform.accounts.ensure_owner(config.data_dir)
        principal = await platform.accounts.owner_principal()
        assert principal is not None
        owner = Wallet()
        await platform.flowork.bootstrap(principal.user_id, owner.address)
        engine = await platform.start_embedded_engine()
        assert engine is not None
        yield Setup(platform, engine, owner, principal.user_id, root.resolve())
    finally:
        await platform.stop()
