"""The embedded engine's Core Engine socket of a real ``runnel serve``, spoken to with
``runnel.client.flowork.CoreEngineClient`` as the Flowork GUI would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.flowork import Gateway, gateway_fixture
from runnel.client.flowork import (
    CoreEngineClient,
    CoreEngineClosed,
    CoreEngineError,
    FloworkSigner,
    GuiSocketClient,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from gateway_fixture(tmp_path_factory, "flowork-engine-socket")


@pytest.fixture(scope="module")
def signer(gateway: Gateway) -> FloworkSigner:
    return FloworkSigner(gateway.owner.account)


@pytest.fixture(scope="module")
def engine_id(gateway: Gateway, signer: FloworkSigner) -> str:
    with gateway.client() as http:
        engines = http.get("/api/v1/user/engines", headers=signer.api_headers()).json()
    embedded = [engine for engine in engines if engine.get("embedded")]
    assert embedded, engines
    found: str = embedded[0]["id"]
    return found


def ws_url(gateway: Gateway) -> str:
    return "ws" + gateway.url.removeprefix("http")


async def test_a_wrong_engine_id_is_closed_with_1008(
    gateway: Gateway, signer: FloworkSigner
) -> None:
    async with CoreEngineClient.connect(ws_url(gateway), "wrong", signer) as client:
        with pytest.raises(CoreEngineClosed) as closed:
            await client.request({"type": "request_settings"}, "settings_response")
    assert closed.value.code == 1008


async def test_the_gui_session(gateway: Gateway, signer: FloworkSigner, engine_id: str) -> None:
    async with CoreEngineClient.connect(ws_url(gateway), engine_id, signer) as engine:
        # Settings.
        settings = await engine.request({"type": "request_settings"}, "settings_response")
        assert settings["settings"]["language"] == "en"
        saved = await engine.request(
            {"type": "save_settings", "settings": {"language": "de"}}, "settings_response"
        )
        assert saved["settings"]["language"] == "de"

        # Drives: the data dir's files folder, by default.
        drives = await engine.request({"type": "request_drives"}, "drives_list_response")
        assert [d["name"] for d in drives["drives"]] == ["files"]
        listing = await engine.request(
            {"type": "request_directory_list", "path": drives["drives"][0]["path"]},
            "directory_list_response",
        )
        assert listing["items"] == []
        outside = await engine.request(
            {"type": "request_directory_list", "path": "/etc"}, "directory_list_response"
        )
        assert outside["error"].startswith("Access denied")

        # Components.
        for kind in ("modules", "triggers"):
            components = await engine.request(
                {"type": "request_components_list", "component_type": kind},
                "components_list_response",
            )
            assert components["component_type"] == kind and components["components"]

        # Presets.
        data: dict[str, Any] = {
            "nodes": [
                {
                    "id": "n1",
                    "name": "Popup",
                    "x": 0,
                    "y": 0,
                    "module_id": "debug_popup_module",
                    "config_values": {},
                }
            ],
            "connections": [],
        }
        listed = await engine.request(
            {
                "type": "save_preset",
                "name": "E2E",
                "workflow_data": data,
                "signature": signer.sign_preset(data),
            },
            "presets_list_response",
        )
        assert listed["presets"] == [{"name": "E2E"}]
        loaded = await engine.request(
            {"type": "load_preset", "name": "E2E"}, "load_preset_response"
        )
        assert loaded["workflow_data"] == data
        with pytest.raises(CoreEngineError, match="signature"):
            await engine.request(
                {
                    "type": "save_preset",
                    "name": "E2E",
                    "workflow_data": data,
                    "signature": FloworkSigner.generate().sign_preset(data),
                },
                "presets_list_response",
            )

        # Variables.
        variables = await engine.request(
            {"type": "update_variable", "name": "GREETING", "data": {"value": "hello"}},
            "variables_response",
        )
        assert variables["variables"][0]["value"] == "hello"

        # A job: started, then its status updates come on this connection.
        job_id = str(uuid.uuid4())
        started = await engine.request(
            {
                "type": "execute_workflow",
                "job_id": job_id,
                "workflow_data": data,
                "initial_payload": {},
                "preset_name": "E2E",
                "mode": "EXECUTE",
            },
            "execute_workflow_response",
            timeout=30,
        )
        assert started["job_id"] == job_id
        while True:
            update = await engine.next_message("workflow_status_update", timeout=30)
            if update["job_id"] == job_id and update["status_data"]["status"] in (
                "SUCCEEDED",
                "FAILED",
                "STOPPED",
            ):
                break
        assert update["status_data"]["status"] == "SUCCEEDED", update

        deleted = await engine.request(
            {"type": "delete_preset", "name": "E2E"}, "presets_list_response"
        )
        assert deleted["presets"] == []


async def test_a_stranger_is_refused(gateway: Gateway, engine_id: str) -> None:
    async with CoreEngineClient.connect(
        ws_url(gateway), engine_id, FloworkSigner.generate()
    ) as engine:
        with pytest.raises(CoreEngineError) as refused:
            await engine.request({"type": "request_presets_list"}, "presets_list_response")
    assert str(refused.value) == f"User not authorized for engine {engine_id}"


async def test_the_gateway_gui_socket_relays_to_the_embedded_engine(
    gateway: Gateway, signer: FloworkSigner, engine_id: str
) -> None:
    async with GuiSocketClient.connect(gateway.url, signer, engine_id=engine_id) as gui:
        settings = await gui.request({"type": "request_settings"}, "settings_response")
        assert settings["settings"]["notifications_duration_seconds"] == 5
        presets = await gui.request({"type": "request_presets_list"}, "presets_list_response")
        assert isinstance(presets["presets"], list)
    async with GuiSocketClient.connect(
        gateway.url, FloworkSigner.generate(), engine_id=engine_id
    ) as stranger:
        with pytest.raises(CoreEngineError):
            await stranger.request({"type": "request_settings"}, "settings_response")
