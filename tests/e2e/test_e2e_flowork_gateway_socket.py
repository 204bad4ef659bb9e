"""The gateway's Socket.IO against a real ``runnel serve``: a GUI and a separate engine
talking through it (on both Socket.IO paths), the embedded engine answering in-process,
a token reset ending the engine's connection, and a clean stop with sockets open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api.flowork.test_realtime import ENGINE, VITALS, Sockets, job, status
from e2e.flowork import Gateway, gateway_fixture
from e2e.harness import start_server
from flowork_keys import Wallet, preset_signature

pytestmark = pytest.mark.e2e

FLOW = {
    "nodes": [{"id": "a", "name": "Popup", "x": 0, "y": 0, "module_id": "debug_popup_module"}],
    "connections": [],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from gateway_fixture(tmp_path_factory, "flowork-gateway-socket")


@pytest.fixture
async def sockets(gateway: Gateway) -> AsyncIterator[Sockets]:
    opened = Sockets(gateway.url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def rest(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


async def test_a_gui_and_a_separate_engine(sockets: Sockets, rest: httpx.AsyncClient) -> None:
    alice, bob = Wallet(), Wallet()
    created = await rest.post(
        "/api/v1/user/engines", json={"name": "worker box"}, headers=alice.headers()
    )
    assert created.status_code == 201, created.text
    engine_id, token = created.json()["id"], created.json()["raw_token"]

    gui = await sockets.gui(alice, path="api/socket.io")
    assert await gui.expect("engine_status_update") == status(engine_id, "offline", "worker box")
    outsider = await sockets.gui(bob)
    engine = await sockets.engine(engine_id, token)
    assert await gui.expect("engine_status_update") == status(engine_id, "online", "worker box")

    await gui.emit("request_presets_list", job(engine_id))
    relayed = await engine.expect("request_presets_list")
    assert relayed["payload"]["user_context"]["address"] == alice.lower
    answer = {"type": "presets_list_response", "presets": []}
    await engine.emit("relay_to_gui", {"audience": [alice.lower], "message": answer})
    assert await gui.expect("presets_list_response") == answer

    await outsider.emit("request_presets_list", job(engine_id))
    assert "may not use engine" in (await outsider.expect("error"))["error"]

    reset = await rest.post(
        f"/api/v1/user/engines/{engine_id}/reset-token", headers=alice.headers()
    )
    assert reset.status_code == 200, reset.text
    await engine.wait_disconnected()
    assert await gui.expect("engine_status_update") == status(engine_id, "offline", "worker box")


async def test_the_embedded_engine_answers_in_process(
    sockets: Sockets, rest: httpx.AsyncClient, gateway: Gateway
) -> None:
    owner = gateway.owner
    saved = await rest.post(
        "/api/v1/presets",
        json={"name": "Nightly", "workflow_data": FLOW, "signature": preset_signature(owner, FLOW)},
        headers=owner.headers(),
    )
    assert saved.status_code == 201, saved.text
    embedded = (await rest.get("/api/v1/user/engines", headers=owner.headers())).json()[0]
    gui = await sockets.gui(owner, ignore=VITALS)
    assert (await gui.expect("engine_status_update"))["status"] == "online"
    await gui.emit("request_presets_list", job(embedded["id"]))
    answer = await gui.expect("presets_list_response")
    assert {"name": "Nightly"} in answer["presets"]


async def test_a_clean_stop_with_sockets_open(tmp_path_factory: pytest.TempPathFactory) -> None:
    owner = Wallet()
    data_dir = tmp_path_factory.mktemp("socket-stop") / "data"
    server = start_server(
        data_dir, env={"RUNNEL_RATE_LIMIT_PER_SECOND": "0", "RUNNEL_OWNER_ADDRESS": owner.address}
    )
    opened = Sockets(server.base_url)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as rest:
            created = await rest.post(
                "/api/v1/user/engines", json={"name": "box"}, headers=owner.headers()
            )
            assert created.status_code == 201, created.text
        gui = await opened.gui(owner, ignore=VITALS)
        assert (await gui.expect("engine_status_update"))["status"] == "online"
        engine = opened.peer(ENGINE)
        await engine.connect(
            server.base_url,
            {"engine_id": created.json()["id"], "token": created.json()["raw_token"]},
        )
        await engine.expect("auth_success")
        # Blocking (it waits for the process): in a thread, so the clients keep reading.
        assert await asyncio.to_thread(server.stop) == 0, server.log()
        await gui.wait_disconnected()
        await engine.wait_disconnected()
    finally:
        server.stop()
        await opened.close()
