"""``EngineNode`` in-process: its own store, the kill switch on its executor, the
authorization list kept across restarts, and its REST API's key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runnel.auth.shared_secret import engine_api_key
from runnel.engine_node import EngineNode
from runnel.settings import EngineSettings, Settings

TOKEN = "dev_engine_" + "ab" * 16
SECRET = "flork_sec_node_test_0123456789"
OWNER = "0x" + "11" * 20
SHARED = "0x" + "22" * 20


def settings(data_dir: Path, secret: str | None = SECRET) -> EngineSettings:
    return EngineSettings(
        engine_id="node-1",
        engine_token=TOKEN,
        gateway_url="http://127.0.0.1:9",
        gateway_secret_token=secret,
        data_dir=data_dir,
    )


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[EngineNode]:
    opened = await EngineNode.open(settings(tmp_path / "engine"), Settings(data_dir=tmp_path))
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_engine_has_its_own_store(node: EngineNode, tmp_path: Path) -> None:
    assert node.data_dir == tmp_path / "engine"
    assert (tmp_path / "engine" / "runnel.db").exists()
    assert not (tmp_path / "runnel.db").exists()


async def test_the_gateways_kill_switch_reaches_the_executor(node: EngineNode) -> None:
    await node.apply_kill_switch(["debug_popup_module", "not a valid id!", "http.request"])
    disabled = node.platform.node_services.disabled_types
    assert "http.request" in disabled
    found = node.platform.registry.find("debug_popup_module")
    assert found is not None and found.manifest.type in disabled
    await node.apply_kill_switch([])
    assert node.platform.node_services.disabled_types == frozenset()


async def test_the_authorization_list_survives_a_restart(tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path)
    first = await EngineNode.open(settings(tmp_path / "engine"), base)
    try:
        await first.apply_auth_list([SHARED], OWNER)
        assert await first.authority.is_authorized(OWNER)
    finally:
        await first.close()
    again = await EngineNode.open(settings(tmp_path / "engine"), base)
    try:
        assert again.authority.addresses == {OWNER, SHARED}
        assert await again.authority.owner_address() == OWNER
    finally:
        await again.close()


async def test_the_rest_api_answers_the_gateways_key_only(node: EngineNode) -> None:
    transport = httpx.ASGITransport(app=node.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
        user = {"X-Flowork-User-Address": OWNER}
        assert (await http.get("/api/v1/presets", headers=user)).status_code == 401
        wrong = {**user, "X-API-Key": SECRET}  # the secret itself is not the engine's key
        assert (await http.get("/api/v1/presets", headers=wrong)).status_code == 401
        right = {**user, "X-API-Key": engine_api_key(SECRET, "node-1")}
        answer = await http.get("/api/v1/presets", headers=right)
        assert answer.status_code == 200 and answer.json() == []


async def test_without_the_secret_the_rest_api_is_closed(tmp_path: Path) -> None:
    node = await EngineNode.open(
        settings(tmp_path / "engine", secret=None), Settings(data_dir=tmp_path)
    )
    try:
        transport = httpx.ASGITransport(app=node.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
            headers = {"X-Flowork-User-Address": OWNER, "X-API-Key": ""}
            assert (await http.get("/api/v1/presets", headers=headers)).status_code == 401
    finally:
        await node.close()
