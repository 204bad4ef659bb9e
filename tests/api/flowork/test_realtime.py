"""The gateway's Socket.IO server over a real uvicorn server: GUI sign-in, engine sign-in,
the relay between them with its permission checks, sharing and revoking, token resets,
engine deletion, the kill switch, and the embedded engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import socketio

from api.servers import ThreadServer
from flowork_keys import Wallet
from runnel.auth.engine_tokens import new_engine_token
from runnel.auth.tokens import token_digest
from runnel.services.core_engine.types import Outgoing

GUI = "/gui-socket"
ENGINE = "/engine-socket"
#: How long an expected event may take (a wait on a queue, never a sleep).
WAIT = 10.0
#: For sessions of the embedded engine's owner: its vitals tick every 10 s, at any time.
VITALS = frozenset({"engine_vitals_update"})


class Peer:
    """A Socket.IO client on one namespace that records every event in order."""

    def __init__(self, namespace: str, ignore: frozenset[str] = frozenset()) -> None:
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self.refusal: Any = None

        async def on_any(event: str, *args: Any) -> None:
            if event not in ignore:
                await self.events.put((event, args[0] if args else None))

        async def on_connect_error(data: Any = None) -> None:
            self.refusal = data

        async def on_disconnect(*args: Any) -> None:
            self.disconnected.set()

        async def on_connect() -> None:
            pass

        self.client.on("*", on_any, namespace=namespace)
        self.client.on("connect", on_connect, namespace=namespace)
        self.client.on("connect_error", on_connect_error, namespace=namespace)
        self.client.on("disconnect", on_disconnect, namespace=namespace)

    async def connect(self, url: str, auth: Any, *, path: str = "socket.io") -> Peer:
        await self.client.connect(
            url, namespaces=[self.namespace], auth=auth, socketio_path=path, wait_timeout=WAIT
        )
        return self

    async def refused(self, url: str, auth: Any, *, path: str = "socket.io") -> str:
        """The message of the refusal of a connect with ``auth``."""
        with pytest.raises(socketio.exceptions.ConnectionError):
            await self.connect(url, auth, path=path)
        assert isinstance(self.refusal, dict), self.refusal
        return str(self.refusal["message"])

    async def next(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), WAIT)

    async def expect(self, event: str) -> Any:
        """The data of the next event, which must be ``event``."""
        got, data = await self.next()
        assert got == event, (got, data)
        return data

    async def emit(self, event: str, data: Any) -> None:
        await self.client.emit(event, data, namespace=self.namespace)

    async def wait_disconnected(self) -> None:
        await asyncio.wait_for(self.disconnected.wait(), WAIT)

    async def close(self) -> None:
        await self.client.disconnect()
        await self.client.shutdown()


def gui_auth(wallet: Wallet, *, at: float | None = None, flat: bool = False) -> dict[str, Any]:
    """A fresh signed ``flowork_socket_auth`` (or one signed at ``at``)."""
    headers = wallet.headers(wallet.message("flowork_socket_auth", at=at))
    headers.pop("X-Payload-Version")
    return headers if flat else {"headers": headers}


def job(engine_id: str, **payload: Any) -> dict[str, Any]:
    return {"v": 2, "payload": {"target_engine_id": engine_id, **payload}}


class Sockets:
    """Opens peers against one server and closes them all at the end of a test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peers: list[Peer] = []

    def peer(self, namespace: str, ignore: frozenset[str] = frozenset()) -> Peer:
        made = Peer(namespace, ignore)
        self.peers.append(made)
        return made

    async def gui(
        self, wallet: Wallet, *, path: str = "socket.io", ignore: frozenset[str] = frozenset()
    ) -> Peer:
        return await self.peer(GUI, ignore).connect(self.url, gui_auth(wallet), path=path)

    async def engine(self, engine_id: str, token: str) -> Peer:
        """An engine that signed in (its ``auth_success`` consumed)."""
        peer = await self.peer(ENGINE).connect(self.url, {"engine_id": engine_id, "token": token})
        await peer.expect("auth_success")
        return peer

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


@pytest.fixture
async def sockets(gateway: ThreadServer) -> AsyncIterator[Sockets]:
    opened = Sockets(gateway.base_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def rest(gateway: ThreadServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as client:
        yield client


async def register(rest: httpx.AsyncClient, wallet: Wallet, name: str) -> tuple[str, str]:
    """``(engine_id, token)`` of a new engine of ``wallet``."""
    response = await rest.post(
        "/api/v1/user/engines", json={"name": name}, headers=wallet.headers()
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["raw_token"]


async def user_id(rest: httpx.AsyncClient, wallet: Wallet) -> str:
    response = await rest.get("/api/v1/auth/profile", headers=wallet.headers())
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def status(engine_id: str, state: str, name: str) -> dict[str, str]:
    return {"engineId": engine_id, "status": state, "name": name}


# -- GUI sign-in -----------------------------------------------------------------------


async def test_gui_sign_in(sockets: Sockets, owner: Wallet, rest: httpx.AsyncClient) -> None:
    url = sockets.url
    # The gateway's owner is told at once about the embedded engine, online.
    me = await sockets.gui(owner, ignore=VITALS)
    embedded = (await rest.get("/api/v1/user/engines", headers=owner.headers())).json()[0]
    assert await me.expect("engine_status_update") == status(
        embedded["id"], "online", embedded["name"]
    )
    # Flat keys and the /api/socket.io path work too.
    other = Wallet()
    await sockets.peer(GUI).connect(url, gui_auth(other, flat=True), path="api/socket.io")

    stranger = Wallet()
    forged = gui_auth(stranger)
    forged["headers"]["X-Signature"] = Wallet().sign(forged["headers"]["X-Signed-Message"])
    assert "Invalid signature" in await sockets.peer(GUI).refused(url, forged)
    stale = gui_auth(stranger, at=time.time() - 1000)
    assert "Stale" in await sockets.peer(GUI).refused(url, stale)
    api_format = {"headers": stranger.headers()}  # flowork_api_auth is not a socket sign-in
    assert "Malformed signed message" in await sockets.peer(GUI).refused(url, api_format)
    assert "Missing signature" in await sockets.peer(GUI).refused(url, {"headers": {}})
    assert "Missing signature" in await sockets.peer(GUI).refused(url, None)

    once = gui_auth(stranger)
    await sockets.peer(GUI).connect(url, once)
    assert "Replayed" in await sockets.peer(GUI).refused(url, once)


# -- engine sign-in --------------------------------------------------------------------


async def test_engine_sign_in(sockets: Sockets, rest: httpx.AsyncClient) -> None:
    alice = Wallet()
    engine_id, token = await register(rest, alice, "laptop")
    other_id, _ = await register(rest, alice, "desktop")
    good = await sockets.peer(ENGINE).connect(sockets.url, {"engine_id": engine_id, "token": token})
    assert await good.expect("auth_success") == {"user_id": await user_id(rest, alice)}

    wrong_token = "dev_engine_" + "0" * 32
    refusals: list[tuple[dict[str, Any] | None, str]] = [
        ({"engine_id": engine_id, "token": wrong_token}, "Invalid engine token"),
        ({"engine_id": engine_id, "token": "not-a-token"}, "Invalid engine token"),
        ({"engine_id": other_id, "token": token}, "Invalid engine token"),
        ({"engine_id": engine_id}, "Missing credentials"),
        (None, "Missing credentials"),
    ]
    for auth, text in refusals:
        bad = await sockets.peer(ENGINE).connect(sockets.url, auth)
        failed = await bad.expect("auth_failed")
        assert text in failed["error"], (auth, failed)
        await bad.wait_disconnected()
    # The refused connections did not take the engine's place.
    assert not good.disconnected.is_set()


# -- the relay, sharing and revoking ---------------------------------------------------


async def test_relay_sharing_and_revoking(sockets: Sockets, rest: httpx.AsyncClient) -> None:
    alice, bob = Wallet(), Wallet()
    engine_id, token = await register(rest, alice, "alice engine")
    alice_id, bob_id = await user_id(rest, alice), await user_id(rest, bob)

    a = await sockets.gui(alice)
    assert await a.expect("engine_status_update") == status(engine_id, "offline", "alice engine")
    b = await sockets.gui(bob, path="api/socket.io")

    # Offline: the request is refused, to that session only.
    await a.emit("request_presets_list", job(engine_id))
    assert "offline" in (await a.expect("error"))["error"]

    engine = await sockets.engine(engine_id, token)
    assert await a.expect("engine_status_update") == status(engine_id, "online", "alice engine")
    await engine.emit("engine_ready", {"internal_api_url": "http://127.0.0.1:9/engine"})

    # Alice's request reaches the engine with who asked; the answer reaches Alice.
    await a.emit("request_presets_list", job(engine_id, user_context={"user_id": bob_id}))
    relayed = await engine.expect("request_presets_list")
    assert relayed == {
        "v": 2,
        "payload": {
            "type": "request_presets_list",
            "target_engine_id": engine_id,
            "user_context": {"user_id": alice_id, "address": alice.lower},
        },
    }
    answer = {"type": "presets_list_response", "presets": [{"name": "Nightly"}]}
    await engine.emit("relay_to_gui", {"audience": [alice.address], "message": answer})
    assert await a.expect("presets_list_response") == answer
    vitals = {"engineId": "someone-else", "isBusy": False, "cpuPercent": 1.5}
    await engine.emit("engine_vitals_update", vitals)
    assert await a.expect("engine_vitals_update") == {**vitals, "engineId": engine_id}

    # Bob sees nothing of it (no status, no answer, no vitals: his next event is the
    # refusal of his own request), and cannot relay to it.
    await b.emit("request_presets_list", job(engine_id))
    assert "may not use engine" in (await b.expect("error"))["error"]
    # Bad requests are refused too.
    await b.emit("request_presets_list", {"payload": {"target_engine_id": engine_id}})
    assert "expected" in (await b.expect("error"))["error"]
    await b.emit("request_presets_list", {"v": 2, "payload": {}})
    assert "target_engine_id" in (await b.expect("error"))["error"]
    await b.emit("force_sync_kill_switch", job(engine_id))
    assert "Unknown request type" in (await b.expect("error"))["error"]

    # Shared: the engine refreshes its list, Bob is told it is online and may use it.
    shared = await rest.post(
        f"/api/v1/engines/{engine_id}/shares",
        json={"share_with_identifier": bob.address},
        headers=alice.headers(),
    )
    assert shared.status_code == 201, shared.text
    assert await engine.expect("force_refresh_auth_list") == {}
    assert await b.expect("engine_status_update") == status(engine_id, "online", "alice engine")
    await b.emit("request_presets_list", job(engine_id))
    relayed = await engine.expect("request_presets_list")
    assert relayed["payload"]["user_context"] == {"user_id": bob_id, "address": bob.lower}
    await engine.emit("relay_to_gui", {"audience": [bob.lower], "message": answer})
    assert await b.expect("presets_list_response") == answer
    everyone = {"type": "log", "message": "for every user"}
    await engine.emit("relay_to_gui", {"audience": None, "message": everyone})
    assert await b.expect("log") == everyone
    # Alice's next event is the broadcast: Bob's answer did not reach her.
    assert await a.expect("log") == everyone

    # Revoked: Bob is told, and stops receiving at once.
    revoked = await rest.delete(
        f"/api/v1/engines/{engine_id}/shares/{bob_id}", headers=alice.headers()
    )
    assert revoked.status_code == 200, revoked.text
    assert await engine.expect("force_refresh_auth_list") == {}
    assert await b.expect("engine_status_update") == status(engine_id, "revoked", "alice engine")
    await engine.emit("relay_to_gui", {"audience": None, "message": everyone})
    await engine.emit("relay_to_gui", {"audience": [bob.lower], "message": answer})
    assert await a.expect("log") == everyone
    await b.emit("request_presets_list", job(engine_id))
    assert "may not use engine" in (await b.expect("error"))["error"]

    # Bad relays from the engine are dropped, and the engine stays connected.
    await engine.emit("relay_to_gui", {"audience": "everyone", "message": answer})
    await engine.emit("relay_to_gui", {"message": {"no": "type"}})
    await engine.emit("relay_to_gui", {"audience": None, "message": everyone})
    assert await a.expect("log") == everyone

    listed = (await rest.get("/api/v1/user/engines", headers=alice.headers())).json()
    assert [e["status"] for e in listed if e["id"] == engine_id] == ["online"]

    await engine.close()
    assert await a.expect("engine_status_update") == status(engine_id, "offline", "alice engine")


# -- token resets, replaced connections, deletion, renames ------------------------------


async def test_token_reset_and_deletion_end_the_connection(
    sockets: Sockets, rest: httpx.AsyncClient
) -> None:
    alice = Wallet()
    engine_id, token = await register(rest, alice, "doomed")
    a = await sockets.gui(alice)
    assert (await a.expect("engine_status_update"))["status"] == "offline"

    first = await sockets.engine(engine_id, token)
    assert (await a.expect("engine_status_update"))["status"] == "online"
    # A second connection with the same token replaces the first; the engine stays up.
    second = await sockets.engine(engine_id, token)
    await first.wait_disconnected()
    assert (await a.expect("engine_status_update"))["status"] == "online"

    renamed = await rest.put(
        f"/api/v1/user/engines/{engine_id}/update-name",
        json={"name": "renamed"},
        headers=alice.headers(),
    )
    assert renamed.status_code == 200, renamed.text
    assert await a.expect("engine_status_update") == status(engine_id, "online", "renamed")

    reset = await rest.post(
        f"/api/v1/user/engines/{engine_id}/reset-token", headers=alice.headers()
    )
    assert reset.status_code == 200, reset.text
    await second.wait_disconnected()
    assert await a.expect("engine_status_update") == status(engine_id, "offline", "renamed")
    stale = await sockets.peer(ENGINE).connect(
        sockets.url, {"engine_id": engine_id, "token": token}
    )
    assert "Invalid engine token" in (await stale.expect("auth_failed"))["error"]

    third = await sockets.engine(engine_id, reset.json()["token"])
    assert (await a.expect("engine_status_update"))["status"] == "online"
    deleted = await rest.delete(f"/api/v1/user/engines/{engine_id}", headers=alice.headers())
    assert deleted.status_code == 200, deleted.text
    await third.wait_disconnected()
    assert await a.expect("engine_status_update") == status(engine_id, "revoked", "renamed")


async def test_a_token_replaced_elsewhere_ends_the_connection_at_the_next_report(
    sockets: Sockets, rest: httpx.AsyncClient, gateway: ThreadServer
) -> None:
    """Another API process (same database) reset the token: no event reaches this one,
    but the engine's next vitals report finds the token gone."""
    alice = Wallet()
    engine_id, token = await register(rest, alice, "elsewhere")
    a = await sockets.gui(alice)
    assert (await a.expect("engine_status_update"))["status"] == "offline"
    engine = await sockets.engine(engine_id, token)
    assert (await a.expect("engine_status_update"))["status"] == "online"
    await engine.emit("engine_vitals_update", {"isBusy": False})
    assert (await a.expect("engine_vitals_update"))["engineId"] == engine_id

    platform = gateway.platform
    assert platform is not None
    store = platform.flowork.engines.store
    digest = token_digest(new_engine_token())
    assert gateway.run(store.set_engine_token(engine_id, digest, time.time()))
    await engine.emit("engine_vitals_update", {"isBusy": False})
    await engine.wait_disconnected()
    assert await a.expect("engine_status_update") == status(engine_id, "offline", "elsewhere")


# -- the kill switch -------------------------------------------------------------------


async def test_kill_switch_reaches_connected_engines(
    sockets: Sockets, rest: httpx.AsyncClient, owner: Wallet
) -> None:
    alice = Wallet()
    engine_id, token = await register(rest, alice, "switched")
    engine = await sockets.engine(engine_id, token)
    component = "realtime_test_module"
    added = await rest.post(
        "/api/v1/admin/disabled-components",
        json={"component_id": component},
        headers=owner.headers(),
    )
    assert added.status_code == 201, added.text
    assert component in (await engine.expect("force_sync_kill_switch"))["components"]
    enabled = await rest.delete(
        f"/api/v1/admin/disabled-components/{component}", headers=owner.headers()
    )
    assert enabled.status_code == 200, enabled.text
    assert component not in (await engine.expect("force_sync_kill_switch"))["components"]


# -- the embedded engine ---------------------------------------------------------------


async def test_relay_to_the_embedded_engine(
    sockets: Sockets, rest: httpx.AsyncClient, owner: Wallet
) -> None:
    embedded = (await rest.get("/api/v1/user/engines", headers=owner.headers())).json()[0]
    me = await sockets.gui(owner, ignore=VITALS)
    assert (await me.expect("engine_status_update"))["engineId"] == embedded["id"]
    await me.emit("request_presets_list", job(embedded["id"]))
    answer = await me.expect("presets_list_response")
    assert isinstance(answer["presets"], list)
    # An unknown type is the engine's own error answer, to the sender.
    await me.emit("no_such_request", job(embedded["id"]))
    assert "Unknown message type" in (await me.expect("error"))["error"]

    stranger = await sockets.gui(Wallet())
    await stranger.emit("request_presets_list", job(embedded["id"]))
    assert "may not use engine" in (await stranger.expect("error"))["error"]


async def test_a_job_on_the_embedded_engine(
    sockets: Sockets, rest: httpx.AsyncClient, owner: Wallet
) -> None:
    """execute_workflow in-process: the immediate answer, then the job's events (from
    ``CoreEngine.listen``) to the owner's sessions, in order, to the end of the job."""
    embedded = (await rest.get("/api/v1/user/engines", headers=owner.headers())).json()[0]
    me = await sockets.gui(owner, ignore=VITALS)
    assert (await me.expect("engine_status_update"))["engineId"] == embedded["id"]
    flow = {
        "nodes": [{"id": "a", "name": "Popup", "x": 0, "y": 0, "module_id": "debug_popup_module"}],
        "connections": [],
    }
    await me.emit("execute_workflow", job(embedded["id"], workflow_data=flow))
    started = await me.expect("execute_workflow_response")
    job_id = started["job_id"]
    seen: list[str] = []
    while True:
        event, data = await me.next()
        seen.append(event)
        done = event == "workflow_status_update" and data["job_id"] == job_id
        if done and data["status_data"]["status"] in {"SUCCEEDED", "FAILED", "STOPPED"}:
            break
    assert data["status_data"]["status"] == "SUCCEEDED", data
    assert "SHOW_DEBUG_POPUP" in seen, seen


async def test_embedded_engine_events_reach_its_users(
    sockets: Sockets, rest: httpx.AsyncClient, owner: Wallet, gateway: ThreadServer
) -> None:
    """What the Core Engine emits unasked goes to its audience; its status tick arrives
    as engine_vitals_update (engine_status_update is online/offline on this socket)."""
    embedded = (await rest.get("/api/v1/user/engines", headers=owner.headers())).json()[0]
    me = await sockets.gui(owner)
    assert (await me.expect("engine_status_update"))["engineId"] == embedded["id"]
    platform = gateway.platform
    assert platform is not None and platform.core_engine is not None
    core = platform.core_engine
    tick = {"type": "engine_status_update", "engineId": embedded["id"], "isBusy": False}
    not_for_me = {"type": "log", "message": "someone else's job"}
    for_me = {"type": "log", "message": "my job"}
    gateway.call(lambda: core.emit(Outgoing(tick, None)))
    gateway.call(lambda: core.emit(Outgoing(not_for_me, frozenset({Wallet().lower}))))
    gateway.call(lambda: core.emit(Outgoing(for_me, frozenset({owner.lower}))))
    event, data = await me.next()
    while data != {**tick, "type": "engine_vitals_update"}:  # a real tick may come first
        assert event == "engine_vitals_update", (event, data)
        event, data = await me.next()
    assert await me.expect("log") == for_me


# -- the engines' status in GET /api/v1/user/engines ------------------------------------


async def test_the_engine_list_shows_the_live_connection(
    sockets: Sockets, rest: httpx.AsyncClient
) -> None:
    """A remote engine is online the moment it connects and offline the moment its
    connection ends (not 120 s after it was last seen)."""
    alice = Wallet()
    engine_id, token = await register(rest, alice, "live")

    async def listed() -> str:
        response = await rest.get("/api/v1/user/engines", headers=alice.headers())
        assert response.status_code == 200, response.text
        return str(next(e["status"] for e in response.json() if e["id"] == engine_id))

    a = await sockets.gui(alice)
    assert (await a.expect("engine_status_update"))["status"] == "offline"
    assert await listed() == "offline"
    engine = await sockets.engine(engine_id, token)
    assert await listed() == "online"
    assert (await a.expect("engine_status_update"))["status"] == "online"
    await engine.emit("engine_vitals_update", {"isBusy": False})
    assert (await a.expect("engine_vitals_update"))["engineId"] == engine_id
    assert await listed() == "online"

    await engine.close()
    assert (await a.expect("engine_status_update"))["status"] == "offline"
    assert await listed() == "offline"  # seen a moment ago, but its connection is gone
    again = await sockets.engine(engine_id, token)
    assert await listed() == "online"
    await again.close()
    assert (await a.expect("engine_status_update"))["status"] == "online"
    assert (await a.expect("engine_status_update"))["status"] == "offline"
    assert await listed() == "offline"
