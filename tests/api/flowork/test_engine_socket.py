"""The Core Engine socket of the embedded engine, over TCP (uvicorn in a thread), spoken
to with ``runnel.client.flowork.CoreEngineClient``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from api.servers import ThreadServer
from flowork_keys import Wallet
from runnel.api.flowork.engine_socket import MAX_FRAME_BYTES, OUTBOX_SIZE, engine_socket_routes
from runnel.client.flowork import (
    CoreEngineClient,
    CoreEngineClosed,
    CoreEngineError,
    FloworkSigner,
)
from runnel.platform import Platform
from runnel.services.core_engine import CoreEngine, Outgoing
from runnel.settings import Settings


@pytest.fixture(scope="module")
def owner_signer() -> FloworkSigner:
    return FloworkSigner.generate()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, owner_signer: FloworkSigner
) -> Iterator[ThreadServer]:
    root = tmp_path_factory.mktemp("engine-socket")
    settings = Settings(
        data_dir=root / "data",
        database_url=None,
        rate_limit_per_second=0,
        owner_address=owner_signer.address,
        browse_roots=(root / "browse",),
    )
    running = ThreadServer(settings).start()
    try:
        yield running
    finally:
        running.stop()


def engine_of(server: ThreadServer) -> CoreEngine:
    platform: Platform | None = server.platform
    assert platform is not None and platform.core_engine is not None
    return platform.core_engine


@pytest.fixture
async def owner(
    server: ThreadServer, owner_signer: FloworkSigner
) -> AsyncIterator[CoreEngineClient]:
    async with CoreEngineClient.connect(
        server.ws_url, engine_of(server).engine_id, owner_signer
    ) as client:
        yield client


def share_with(server: ThreadServer, signer: FloworkSigner) -> str:
    """Share the embedded engine with ``signer``; the new user's id."""
    platform = server.platform
    assert platform is not None
    engine = engine_of(server)

    async def share() -> str:
        owner = await platform.accounts.owner_principal()
        assert owner is not None
        record = await platform.flowork.sharing.share(
            owner.user_id, engine.engine_id, signer.address
        )
        return str(record.user.id)

    return server.run(share())


def revoke(server: ThreadServer, user_id: str) -> None:
    platform = server.platform
    assert platform is not None
    engine = engine_of(server)

    async def revoke() -> None:
        owner = await platform.accounts.owner_principal()
        assert owner is not None
        await platform.flowork.sharing.revoke(owner.user_id, engine.engine_id, user_id)

    server.run(revoke())


def emit(server: ThreadServer, *messages: Outgoing) -> None:
    """Hand ``messages`` to the engine's listeners, all in one go on its loop."""
    engine = engine_of(server)

    def send_all() -> None:
        for message in messages:
            engine.emit(message)

    server.call(send_all)


# -- connecting -------------------------------------------------------------------------


@pytest.mark.parametrize("engine_id", ["not-this-engine", ""])
async def test_a_wrong_or_missing_engine_id_closes_with_1008(
    server: ThreadServer, owner_signer: FloworkSigner, engine_id: str
) -> None:
    async with CoreEngineClient.connect(server.ws_url, engine_id, owner_signer) as client:
        with pytest.raises(CoreEngineClosed) as closed:
            await client.next_message()
    assert closed.value.code == 1008


async def test_the_engine_ws_path_answers_too(
    server: ThreadServer, owner_signer: FloworkSigner
) -> None:
    url = f"{server.ws_url}/engine/ws"
    async with CoreEngineClient.connect(url, engine_of(server).engine_id, owner_signer) as client:
        answer = await client.request({"type": "request_settings"}, "settings_response")
    assert answer["settings"]["language"] == "en"


# -- the owner's session ----------------------------------------------------------------


async def test_settings_drives_and_components(owner: CoreEngineClient) -> None:
    saved = await owner.request(
        {"type": "save_settings", "settings": {"notifications_position": "top_left"}},
        "settings_response",
    )
    assert saved["settings"]["notifications_position"] == "top_left"
    again = await owner.request({"type": "request_settings"}, "settings_response")
    assert again["settings"]["notifications_position"] == "top_left"
    with pytest.raises(CoreEngineError, match="webhook_port"):
        await owner.request(
            {"type": "save_settings", "settings": {"webhook_port": 1}}, "settings_response"
        )

    drives = await owner.request({"type": "request_drives"}, "drives_list_response")
    assert [d["name"] for d in drives["drives"]] == ["browse"]
    root = drives["drives"][0]["path"]
    await asyncio.to_thread(Path(root, "hello.txt").write_text, "hi")
    listed = await owner.request(
        {"type": "request_directory_list", "path": root}, "directory_list_response"
    )
    assert listed["items"] == [{"name": "hello.txt", "type": "file", "path": f"{root}/hello.txt"}]
    refused = await owner.request(
        {"type": "request_directory_list", "path": f"{root}/../data"}, "directory_list_response"
    )
    assert refused["error"].startswith("Access denied") and "items" not in refused

    components = await owner.request(
        {"type": "request_components_list", "component_type": "modules"},
        "components_list_response",
    )
    assert components["component_type"] == "modules"
    assert isinstance(components["components"], list)


async def test_presets_and_variables(owner: CoreEngineClient) -> None:
    data: dict[str, Any] = {"nodes": [], "connections": []}
    saved = await owner.request(
        {
            "type": "save_preset",
            "name": "Socket preset",
            "workflow_data": data,
            "signature": owner.signer.sign_preset(data),
        },
        "presets_list_response",
    )
    assert {"name": "Socket preset"} in saved["presets"]
    loaded = await owner.request(
        {"type": "load_preset", "name": "Socket preset"}, "load_preset_response"
    )
    assert loaded == {
        "type": "load_preset_response",
        "name": "Socket preset",
        "workflow_data": data,
    }
    deleted = await owner.request(
        {"type": "delete_preset", "name": "Socket preset"}, "presets_list_response"
    )
    assert {"name": "Socket preset"} not in deleted["presets"]

    updated = await owner.request(
        {"type": "update_variable", "name": "TOKEN", "data": {"value": "x", "is_secret": True}},
        "variables_response",
    )
    assert {"name": "TOKEN", "value": "", "is_secret": True}.items() <= next(
        v for v in updated["variables"] if v["name"] == "TOKEN"
    ).items()
    remaining = await owner.request(
        {"type": "delete_variable", "name": "TOKEN"}, "variables_response"
    )
    assert all(v["name"] != "TOKEN" for v in remaining["variables"])


# -- bad frames: an error answer, and the connection stays -------------------------------


async def bad_then_fine(client: CoreEngineClient, frame: str | bytes) -> str:
    await client.send_raw(frame)
    error = await client.next_message("error")
    answer = await client.request({"type": "request_settings"}, "settings_response")
    assert answer["type"] == "settings_response"
    message: str = error["error"]
    return message


def signed(signer: FloworkSigner | Wallet, payload: Any, message: str | None = None) -> str:
    if isinstance(signer, FloworkSigner) and message is None:
        return json.dumps(signer.envelope(payload))
    assert message is not None
    auth = {"address": signer.address, "message": message, "signature": signer.sign(message)}
    return json.dumps({"auth": auth, "payload": payload})


async def test_bad_frames_answer_errors_and_the_connection_stays(
    owner: CoreEngineClient, server: ThreadServer
) -> None:
    signer = owner.signer
    assert await bad_then_fine(owner, "{not json") == "Invalid message: not JSON"
    assert (
        await bad_then_fine(owner, json.dumps({"payload": {"type": "request_drives"}}))
    ).startswith("Missing auth")
    now_ms = int(time.time() * 1000)
    forged = Wallet()
    text = f"Flowork GUI-to-Engine Authentication: {now_ms}"
    auth = {"address": signer.address, "message": text, "signature": forged.sign(text)}
    frame = json.dumps({"auth": auth, "payload": {"type": "request_drives"}})
    assert (await bad_then_fine(owner, frame)).startswith("Invalid signature")

    once = signed(signer, {"type": "request_drives"})
    await owner.send_raw(once)
    await owner.next_message("drives_list_response")
    assert (await bad_then_fine(owner, once)).startswith("Replayed")

    stale = f"Flowork GUI-to-Engine Authentication: {now_ms - 3_600_000}"
    assert (await bad_then_fine(owner, signed(signer, {"type": "x"}, stale))).startswith(
        "Stale authentication signature"
    )
    assert await bad_then_fine(owner, signed(signer, {"type": "nope"})) == (
        "Unknown message type: nope"
    )
    assert await bad_then_fine(owner, signed(signer, {"type": "load_preset"})) == (
        "Missing field: name (a non-empty string)"
    )
    huge = signed(signer, {"type": "request_drives", "padding": "x" * (MAX_FRAME_BYTES + 10)})
    assert (await bad_then_fine(owner, huge)).startswith("Message too large")
    # Bytes count, not characters: 600,000 two-byte characters are over the limit.
    wide_envelope = signer.envelope({"type": "request_drives", "padding": "é" * 600_000})
    wide = json.dumps(wide_envelope, ensure_ascii=False)
    assert len(wide) < MAX_FRAME_BYTES < len(wide.encode())
    assert (await bad_then_fine(owner, wide)).startswith("Message too large")


async def test_a_user_who_may_not_use_the_engine_is_refused(server: ThreadServer) -> None:
    engine_id = engine_of(server).engine_id
    async with CoreEngineClient.connect(
        server.ws_url, engine_id, FloworkSigner.generate()
    ) as client:
        with pytest.raises(CoreEngineError) as refused:
            await client.request({"type": "request_settings"}, "settings_response")
        assert str(refused.value) == f"User not authorized for engine {engine_id}"
        with pytest.raises(CoreEngineError, match="not authorized"):
            await client.request({"type": "request_settings"}, "settings_response")


# -- what the engine pushes -------------------------------------------------------------


def pushed(marker: str, audience: frozenset[str] | None) -> Outgoing:
    return Outgoing({"type": "test_push", "marker": marker}, audience)


async def test_pushed_messages_reach_their_audience_only(
    server: ThreadServer, owner: CoreEngineClient
) -> None:
    friend_signer = FloworkSigner.generate()
    friend_id = share_with(server, friend_signer)
    engine_id = engine_of(server).engine_id
    owner_address = owner.signer.address.lower()
    friend_address = friend_signer.address.lower()
    async with CoreEngineClient.connect(server.ws_url, engine_id, friend_signer) as friend:
        # No verified envelope yet on either: nothing is delivered.
        emit(server, pushed("before", None))
        await owner.request({"type": "request_settings"}, "settings_response")
        await friend.request({"type": "request_settings"}, "settings_response")

        emit(
            server,
            pushed("friend only", frozenset({friend_address})),
            pushed("owner only", frozenset({owner_address})),
            pushed("everyone", None),
        )
        assert [(await owner.next_message("test_push"))["marker"] for _ in range(2)] == [
            "owner only",
            "everyone",
        ]
        assert [(await friend.next_message("test_push"))["marker"] for _ in range(2)] == [
            "friend only",
            "everyone",
        ]

        # Revoked: the friend hears nothing more, though still connected.
        revoke(server, friend_id)
        emit(server, pushed("after revoke", None), pushed("last", None))
        assert [(await owner.next_message("test_push"))["marker"] for _ in range(2)] == [
            "after revoke",
            "last",
        ]
        with pytest.raises(CoreEngineError, match="not authorized"):
            await friend.request({"type": "request_settings"}, "settings_response")
        with pytest.raises(TimeoutError):
            await friend.next_message("test_push", timeout=0.2)


async def test_a_slow_client_loses_messages_and_is_told(
    server: ThreadServer, owner: CoreEngineClient
) -> None:
    await owner.request({"type": "request_settings"}, "settings_response")
    sent = OUTBOX_SIZE + 500
    # One synchronous burst: the connection's writer cannot run in between, so the
    # outbox fills and the rest is dropped, while the engine never waits.
    emit(server, *(pushed(str(n), None) for n in range(sent)))
    received: list[str] = []
    while len(received) < OUTBOX_SIZE:
        received.append((await owner.next_message("test_push"))["marker"])
    assert received == [str(n) for n in range(OUTBOX_SIZE)]
    emit(server, pushed("after", None))
    notice = await owner.next_message("log")
    assert notice["level"] == "WARN" and "500 messages were dropped" in notice["message"]
    assert (await owner.next_message("test_push"))["marker"] == "after"


async def test_no_engine_yet_closes_with_1008() -> None:
    app = Starlette(routes=engine_socket_routes(lambda: None))
    scope = {
        "type": "websocket",
        "path": "/engine/ws",
        "raw_path": b"/engine/ws",
        "query_string": b"engineId=x",
        "headers": [],
        "scheme": "ws",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "subprotocols": [],
        "asgi": {"version": "3.0", "spec_version": "2.3"},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1008
