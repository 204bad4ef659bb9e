"""``runnel engine`` as a real process linked to a real gateway (``runnel serve``):

registered through the REST API, it connects, reports where its API answers, and the
gateway forwards a user's request to it (with the per-engine key derived from the gateway
secret); a user reaches it directly on its Core Engine socket and through the gateway's
GUI socket (relayed over the engine's link), where jobs run and their events come back; a
share and the kill switch reach it at once; it comes back after the gateway restarts; a
token reset disconnects it and it says so; SIGTERM stops it with exit code 0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from e2e.flowork import Gateway
from e2e.flowork_engines import WAIT, start_engine, start_gateway, wait_for_count
from e2e.harness import free_port
from flowork_keys import Wallet, preset_signature
from runnel.client.flowork import CoreEngineClient, CoreEngineError, FloworkSigner

pytestmark = pytest.mark.e2e

WORKFLOW = {
    "nodes": [{"id": "n1", "name": "Hello", "x": 0, "y": 0, "module_id": "debug_popup_module"}],
    "connections": [],
}


@pytest.fixture(scope="module")
def gateway_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-engine") / "gateway"


@pytest.fixture(scope="module")
def gateway(gateway_dir: Path) -> Iterator[Gateway]:
    running = start_gateway(gateway_dir, Wallet(), f"127.0.0.1:{free_port()}")
    try:
        yield running
    finally:
        # The test that restarts the gateway puts the new process in ``running.server``.
        code = running.server.stop()
        assert code == 0, running.server.log()


@pytest.fixture
async def gui_socket() -> AsyncIterator[socketio.AsyncClient]:
    client = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
    try:
        yield client
    finally:
        await client.disconnect()


def test_serve_says_its_embedded_engine(gateway: Gateway) -> None:
    line = gateway.server.wait_for_line("embedded engine: ")
    engine_id = line.split("embedded engine: ", 1)[1].strip()
    assert (gateway.server.data_dir / "engine-id").read_text().strip() == engine_id
    with gateway.client() as http:
        listed = http.get("/api/v1/user/engines", headers=gateway.owner.headers()).json()
    assert [e["id"] for e in listed if e["embedded"]] == [engine_id]


async def test_a_remote_engine_end_to_end(
    gateway: Gateway, tmp_path: Path, gui_socket: socketio.AsyncClient
) -> None:
    user, stranger = Wallet(), Wallet()
    signer = FloworkSigner(user.account)
    http = httpx.AsyncClient(base_url=gateway.url, timeout=30)
    created = await http.post(
        "/api/v1/user/engines", json={"name": "Remote box"}, headers=user.headers()
    )
    assert created.status_code == 201, created.text
    engine_id, token = created.json()["id"], created.json()["raw_token"]
    bind = f"127.0.0.1:{free_port()}"
    engine = await asyncio.to_thread(
        start_engine, gateway.url, engine_id, token, tmp_path / "engine", bind
    )
    try:
        await asyncio.to_thread(engine.wait_for_line, "gateway: connected", WAIT)
        listed = (await http.get("/api/v1/user/engines", headers=user.headers())).json()
        assert [(e["id"], e["status"]) for e in listed] == [(engine_id, "online")]
        assert any("authorization list: 1 addresses" in line for line in engine.stdout)
        assert any("kill switch: 0 components disabled" in line for line in engine.stdout)
        # What the engine fetched, with its token: the owner is told apart.
        info = await http.get(
            "/api/v1/engine/get-engine-auth-info", headers={"X-Engine-Token": token}
        )
        assert info.json() == {"authorized_addresses": [user.lower], "owner_address": user.lower}
        kill = "/api/v1/system/disabled-components"
        assert (await http.get(kill, headers={"X-Engine-Token": token})).json() == []
        refused = await http.get(kill, headers={"X-Engine-Token": "dev_engine_" + "0" * 32})
        assert refused.status_code == 401

        # Through the gateway's REST proxy: the request reaches the engine's own store.
        to_engine = {"X-Engine-Id": engine_id}
        saved = await http.post(
            "/api/v1/presets",
            json={
                "name": "remote-hello",
                "workflow_data": WORKFLOW,
                "signature": preset_signature(user, WORKFLOW),
            },
            headers=user.headers(**to_engine),
        )
        assert saved.status_code == 201, saved.text
        names = await http.get("/api/v1/presets", headers=user.headers(**to_engine))
        assert names.status_code == 200, names.text
        assert [p["name"] for p in names.json()] == ["remote-hello"]
        # The gateway's own (embedded) engine does not have it: it is on the remote one.
        assert (
            "remote-hello"
            not in (await http.get("/api/v1/presets", headers=gateway.owner.headers())).text
        )
        # The engine's API answers its gateway only.
        direct = await http.get(f"{engine.base_url}/api/v1/presets")
        assert direct.status_code == 401

        # Its Core Engine socket, directly: the user may, a stranger may not.
        async with CoreEngineClient.connect(f"ws://{bind}/", engine_id, signer) as core:
            answer = await core.request({"type": "request_presets_list"}, "presets_list_response")
            assert answer["presets"] == [{"name": "remote-hello"}]
        async with CoreEngineClient.connect(
            f"ws://{bind}/engine/ws", engine_id, FloworkSigner(stranger.account)
        ) as core:
            with pytest.raises(CoreEngineError, match="not authorized"):
                await core.request({"type": "request_presets_list"}, "presets_list_response")

        # Shared with the stranger: the gateway tells the engine to fetch its list again.
        shared = await http.post(
            f"/api/v1/engines/{engine_id}/shares",
            json={"share_with_identifier": stranger.address},
            headers=user.headers(),
        )
        assert shared.status_code == 201, shared.text
        await asyncio.to_thread(wait_for_count, engine, "authorization list: 2 addresses", 1)
        async with CoreEngineClient.connect(
            f"ws://{bind}/", engine_id, FloworkSigner(stranger.account)
        ) as core:
            answer = await core.request({"type": "request_presets_list"}, "presets_list_response")
            assert answer["presets"] == []  # their own presets on this engine: none

        # Through the gateway's GUI socket: relayed over the engine's link and back.
        answers: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def on_any(event: str, data: Any = None) -> None:
            await answers.put((event, data))

        gui_socket.on("*", on_any, namespace="/gui-socket")
        await gui_socket.connect(
            gateway.url,
            auth=signer.socket_auth(),
            namespaces=["/gui-socket"],
            socketio_path="socket.io",
            transports=["websocket"],
        )
        await gui_socket.emit(
            "request_presets_list",
            {"v": 2, "payload": {"type": "request_presets_list", "target_engine_id": engine_id}},
            namespace="/gui-socket",
        )
        data = await next_event(answers, "presets_list_response")
        assert data["presets"] == [{"name": "remote-hello"}]
        # A job on the remote engine: started, and its events come back the same way.
        done = await run_job(gui_socket, answers, engine_id)
        assert done["status_data"]["status"] == "SUCCEEDED", done

        # The kill switch: an operator disables a component, the engine applies it to its
        # executor, and a job reaching that component fails; enabled again, it runs.
        owner = gateway.owner
        disabled = await http.post(
            "/api/v1/admin/disabled-components",
            json={"component_id": "debug_popup_module"},
            headers=owner.headers(),
        )
        assert disabled.status_code == 201, disabled.text
        await asyncio.to_thread(wait_for_count, engine, "kill switch: 1 components disabled", 1)
        done = await run_job(gui_socket, answers, engine_id)
        assert done["status_data"]["status"] == "FAILED", done
        assert "disabled" in str(done["status_data"].get("error")).lower(), done
        enabled = await http.delete(
            "/api/v1/admin/disabled-components/debug_popup_module", headers=owner.headers()
        )
        assert enabled.status_code == 200, enabled.text
        await asyncio.to_thread(wait_for_count, engine, "kill switch: 0 components disabled", 2)
        done = await run_job(gui_socket, answers, engine_id)
        assert done["status_data"]["status"] == "SUCCEEDED", done

        # The gateway restarts (same address, same data): the engine comes back.
        await asyncio.to_thread(gateway.server.stop)
        restarted = await asyncio.to_thread(
            start_gateway, gateway.server.data_dir, gateway.owner, gateway.url.split("//")[1]
        )
        gateway.server = restarted.server
        await asyncio.to_thread(wait_for_count, engine, "gateway: connected", 2)
        assert any("gateway: connection lost" in line for line in engine.stdout)
        names = await http.get("/api/v1/presets", headers=user.headers(**to_engine))
        assert [p["name"] for p in names.json()] == ["remote-hello"]

        # A token reset: the gateway drops the engine, which says its token is refused
        # and keeps trying (slowly) without crashing.
        reset = await http.post(
            f"/api/v1/user/engines/{engine_id}/reset-token", headers=user.headers()
        )
        assert reset.status_code == 200, reset.text
        await asyncio.to_thread(wait_for_count, engine, "REFUSED", 2)
        assert engine.process.poll() is None
    finally:
        await http.aclose()
        code = await asyncio.to_thread(engine.stop)
    assert code == 0, engine.log()
    assert engine.stdout[-1].strip() == "stopped"


async def next_event(queue: asyncio.Queue[tuple[str, Any]], name: str) -> Any:
    """The data of the next event called ``name`` (others are skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            event, data = await queue.get()
            if event == name:
                return data


async def run_job(
    gui: socketio.AsyncClient, answers: asyncio.Queue[tuple[str, Any]], engine_id: str
) -> Any:
    """Run ``WORKFLOW`` on ``engine_id`` through the GUI socket; its last status update."""
    job_id = str(uuid.uuid4())
    job = {
        "type": "execute_workflow",
        "job_id": job_id,
        "workflow_data": WORKFLOW,
        "initial_payload": {},
        "preset_name": "remote-hello",
        "mode": "EXECUTE",
        "target_engine_id": engine_id,
    }
    await gui.emit("execute_workflow", {"v": 2, "payload": job}, namespace="/gui-socket")
    started = await next_event(answers, "execute_workflow_response")
    assert started["job_id"] == job_id
    while True:
        update = await next_event(answers, "workflow_status_update")
        status = update["status_data"]["status"]
        if update["job_id"] == job_id and status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return update
