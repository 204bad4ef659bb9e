"""The engine's gateway link (``runnel.engine_node.gateway_link``) against a fake gateway:
a python-socketio server with the two REST routes the engine fetches, served by uvicorn
in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runnel.engine_node.gateway_link import NAMESPACE, Backoff, GatewayLink, LinkHooks
from runnel.services.core_engine import EngineUser, ListAuthority, Outgoing

TOKEN = "dev_engine_" + "ab" * 16
OWNER = "0x" + "11" * 20
SHARED = "0x" + "22" * 20
STRANGER = "0x" + "33" * 20
WAIT = 10.0


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), WAIT)


@dataclass
class FakeGateway:
    """What the engine sees of a gateway; what the engine sent lands in the queues."""

    token: str = TOKEN
    addresses: list[str] = field(default_factory=lambda: [OWNER, SHARED])
    disabled: list[str] = field(default_factory=lambda: ["time.delay"])
    connects: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    ready: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    vitals: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    relayed: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    fetches: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    sid: str | None = None

    def build(self) -> tuple[socketio.AsyncServer, Any]:
        sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

        @sio.on("connect", namespace=NAMESPACE)
        async def connect(sid: str, environ: Mapping[str, Any], auth: Any) -> None:
            await self.connects.put(dict(auth or {}))
            if not isinstance(auth, dict) or auth.get("token") != self.token:
                sio.start_background_task(self._refuse, sio, sid)
                return
            self.sid = sid
            sio.start_background_task(
                sio.emit, "auth_success", {"user_id": "u1"}, to=sid, namespace=NAMESPACE
            )

        @sio.on("engine_ready", namespace=NAMESPACE)
        async def engine_ready(sid: str, data: dict[str, Any]) -> None:
            await self.ready.put(data)

        @sio.on("engine_vitals_update", namespace=NAMESPACE)
        async def vitals(sid: str, data: dict[str, Any]) -> None:
            await self.vitals.put(data)

        @sio.on("relay_to_gui", namespace=NAMESPACE)
        async def relay(sid: str, data: dict[str, Any]) -> None:
            await self.relayed.put(data)

        async def auth_info(request: Request) -> JSONResponse:
            if request.headers.get("x-engine-token") != self.token:
                return JSONResponse({"error": "Invalid engine token"}, 401)
            await self.fetches.put("auth")
            return JSONResponse(
                {"authorized_addresses": sorted(self.addresses), "owner_address": OWNER}
            )

        async def disabled(request: Request) -> JSONResponse:
            if request.headers.get("x-engine-token") != self.token:
                return JSONResponse({"error": "Invalid engine token"}, 401)
            await self.fetches.put("kill")
            return JSONResponse(self.disabled)

        routes = Starlette(
            routes=[
                Route("/api/v1/engine/get-engine-auth-info", auth_info),
                Route("/api/v1/system/disabled-components", disabled),
            ]
        )
        return sio, socketio.ASGIApp(sio, routes, socketio_path="socket.io")

    async def _refuse(self, sio: socketio.AsyncServer, sid: str) -> None:
        await sio.emit(
            "auth_failed", {"error": "Invalid engine token"}, to=sid, namespace=NAMESPACE
        )
        await sio.disconnect(sid, namespace=NAMESPACE)


class Served:
    """One uvicorn serving an app on ``port`` in this loop."""

    def __init__(self, app: Any, port: int) -> None:
        self.up = asyncio.Event()
        outer = self

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                outer.up.set()

            @contextlib.contextmanager
            def capture_signals(self) -> Any:  # the test process keeps its own handlers
                yield

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = Server(config)
        self.task = asyncio.create_task(self.server.serve())

    async def started(self) -> None:
        await asyncio.wait_for(self.up.wait(), WAIT)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, WAIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeEngine:
    """Answers every payload with who asked and what; ``emit`` plays a job event."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[Outgoing], None]] = []

    async def handle(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        return [{"type": "echo", "from": user.address, "user_id": user.user_id, **payload}]

    def listen(self, listener: Callable[[Outgoing], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit(self, outgoing: Outgoing) -> None:
        for listener in list(self.listeners):
            listener(outgoing)


@dataclass
class Linked:
    gateway: FakeGateway
    served: Served
    link: GatewayLink
    engine: FakeEngine
    authority: ListAuthority
    kill_switch: list[list[str]]
    said: list[str]
    connected: asyncio.Queue[None]
    port: int


@pytest.fixture
async def linked() -> AsyncIterator[Linked]:
    gateway = FakeGateway()
    _, app = gateway.build()
    port = free_port()
    served = Served(app, port)
    await served.started()
    engine = FakeEngine()
    authority = ListAuthority()
    kill_switch: list[list[str]] = []
    said: list[str] = []

    async def apply_auth(addresses: list[str], owner: str | None) -> None:
        authority.replace(addresses, owner)

    async def apply_kill(components: list[str]) -> None:
        kill_switch.append(components)

    async def vitals() -> Mapping[str, Any]:
        return {"isBusy": False, "cpuPercent": 1.5, "memoryPercent": 20.0}

    link = GatewayLink(
        gateway_url=f"http://127.0.0.1:{port}",
        engine_id="engine-1",
        token=TOKEN,
        internal_api_url="http://127.0.0.1:8989",
        engine=engine,
        hooks=LinkHooks(authority.is_authorized, apply_auth, apply_kill, vitals),
        backoff=Backoff(initial=0.05, maximum=0.2, refused=0.1),
        say=said.append,
    )
    connected: asyncio.Queue[None] = asyncio.Queue()
    link.on_connected = lambda: connected.put_nowait(None)
    running = asyncio.create_task(link.run())
    state = Linked(gateway, served, link, engine, authority, kill_switch, said, connected, port)
    try:
        yield state
    finally:
        link.stop()
        await asyncio.wait_for(running, WAIT)
        if not state.served.task.done():  # a test may have started another one
            await state.served.stop()


async def test_the_link_reports_in_takes_the_lists_and_relays(linked: Linked) -> None:
    gateway = linked.gateway
    assert await next_item(gateway.connects) == {"engine_id": "engine-1", "token": TOKEN}
    assert await next_item(gateway.ready) == {"internal_api_url": "http://127.0.0.1:8989"}
    await next_item(linked.connected)
    assert linked.link.connected
    assert linked.authority.addresses == {OWNER, SHARED}
    assert await linked.authority.owner_address() == OWNER
    assert linked.kill_switch == [["time.delay"]]
    assert await next_item(gateway.vitals) == {
        "engineId": "engine-1",
        "isBusy": False,
        "cpuPercent": 1.5,
        "memoryPercent": 20.0,
    }
    assert any("connected to" in line for line in linked.said)
    sio_server = gateway_server(linked)

    # A relayed job request: answered to its sender only, user_context taken off.
    request = {
        "v": 2,
        "payload": {
            "type": "request_presets_list",
            "target_engine_id": "engine-1",
            "user_context": {"user_id": "u2", "address": SHARED.upper().replace("0X", "0x")},
        },
    }
    await sio_server.emit("request_presets_list", request, to=gateway.sid, namespace=NAMESPACE)
    answer = await next_item(gateway.relayed)
    assert answer == {
        "audience": [SHARED],
        "message": {
            "type": "request_presets_list",
            "from": SHARED,
            "user_id": "u2",
            "target_engine_id": "engine-1",
        },
    }
    # Someone the gateway did not list is refused by the engine too.
    request["payload"]["user_context"] = {"user_id": "u3", "address": STRANGER}  # type: ignore[index]
    await sio_server.emit("execute_workflow", request, to=gateway.sid, namespace=NAMESPACE)
    assert await next_item(gateway.relayed) == {
        "audience": [STRANGER],
        "message": {"type": "error", "error": "User not authorized for engine engine-1"},
    }
    # What the engine publishes goes to the gateway with its audience.
    linked.engine.emit(Outgoing({"type": "log", "message": "hi"}, frozenset({SHARED, OWNER})))
    # The engine's status tick is not relayed (the vitals carry it).
    linked.engine.emit(Outgoing({"type": "engine_status_update", "isBusy": False}, None))
    linked.engine.emit(Outgoing({"type": "workflow_status_update", "job_id": "j"}, None))
    assert await next_item(gateway.relayed) == {
        "audience": [OWNER, SHARED],
        "message": {"type": "log", "message": "hi"},
    }
    assert await next_item(gateway.relayed) == {
        "audience": None,
        "message": {"type": "workflow_status_update", "job_id": "j"},
    }

    # The gateway's commands.
    gateway.addresses = [OWNER, STRANGER]
    while not gateway.fetches.empty():
        gateway.fetches.get_nowait()
    await sio_server.emit("force_refresh_auth_list", {}, to=gateway.sid, namespace=NAMESPACE)
    assert await next_item(gateway.fetches) == "auth"
    await sio_server.emit(
        "force_sync_kill_switch",
        {"components": ["http.request", "debug_popup_module"]},
        to=gateway.sid,
        namespace=NAMESPACE,
    )
    await sio_server.emit("ping_me", {"not": "a request"}, to=gateway.sid, namespace=NAMESPACE)
    # Events are handled in order: once the relay below is answered, both are applied.
    request["payload"]["user_context"] = {"user_id": "u3", "address": STRANGER}  # type: ignore[index]
    await sio_server.emit("request_presets_list", request, to=gateway.sid, namespace=NAMESPACE)
    answer = await next_item(gateway.relayed)
    assert answer["audience"] == [STRANGER] and answer["message"]["type"] == "request_presets_list"
    assert linked.authority.addresses == {OWNER, STRANGER}
    assert linked.kill_switch[-1] == ["http.request", "debug_popup_module"]


def gateway_server(linked: Linked) -> socketio.AsyncServer:
    app = linked.served.server.config.app
    server: socketio.AsyncServer = app.engineio_server  # the ASGIApp's server
    return server


async def test_the_link_comes_back_after_the_gateway_restarts(linked: Linked) -> None:
    await next_item(linked.connected)
    await linked.served.stop()
    # The same gateway again, on the same port.
    _, app = linked.gateway.build()
    linked.served = Served(app, linked.port)
    await linked.served.started()
    await next_item(linked.connected)
    assert any("connection lost" in line for line in linked.said)
    assert any("trying again in" in line for line in linked.said)
    assert linked.link.connected


async def test_a_refused_token_is_said_clearly_and_tried_again(linked: Linked) -> None:
    await next_item(linked.connected)
    # The owner resets the token: the gateway disconnects the engine, then refuses it.
    linked.gateway.token = "dev_engine_" + "cd" * 16
    sio_server = gateway_server(linked)
    await sio_server.disconnect(linked.gateway.sid, namespace=NAMESPACE)
    while not linked.gateway.connects.empty():
        linked.gateway.connects.get_nowait()
    # Two refused attempts: it keeps trying, slowly.
    await next_item(linked.gateway.connects)
    await next_item(linked.gateway.connects)
    refusals = [line for line in linked.said if "REFUSED" in line]
    assert refusals and "Invalid engine token" in refusals[0]
    assert not linked.link.connected
    # The token comes back (the owner set it again): connected again.
    linked.gateway.token = TOKEN
    await next_item(linked.connected)


async def test_an_engine_started_before_its_gateway_waits_for_it() -> None:
    port = free_port()
    said: asyncio.Queue[str] = asyncio.Queue()
    authority = ListAuthority()

    async def apply_auth(addresses: list[str], owner: str | None) -> None:
        authority.replace(addresses, owner)

    async def ignore(components: list[str]) -> None:
        pass

    async def vitals() -> Mapping[str, Any]:
        return {"isBusy": False, "cpuPercent": 0.0, "memoryPercent": 0.0}

    link = GatewayLink(
        gateway_url=f"http://127.0.0.1:{port}",
        engine_id="engine-1",
        token=TOKEN,
        internal_api_url="http://127.0.0.1:8989",
        engine=FakeEngine(),
        hooks=LinkHooks(authority.is_authorized, apply_auth, ignore, vitals),
        backoff=Backoff(initial=0.05, maximum=0.2, refused=0.1),
        say=said.put_nowait,
    )
    running = asyncio.create_task(link.run())
    served: Served | None = None
    try:
        while "cannot connect" not in await next_item(said):
            pass
        gateway = FakeGateway()
        _, app = gateway.build()
        served = Served(app, port)
        await served.started()
        while "connected to" not in await next_item(said):
            pass
        assert authority.addresses == {OWNER, SHARED}
    finally:
        link.stop()
        await asyncio.wait_for(running, WAIT)
        if served is not None:
            await served.stop()
    assert not link.connected
