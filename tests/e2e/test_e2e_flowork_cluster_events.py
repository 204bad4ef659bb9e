"""Engine events across API processes (PostgreSQL): a share, a revoke and a token reset
made through process A reach the engine connection and the GUI session that process B
holds, at once (``runnel.services.engine_event_relay``); B's engine list shows the live
connection, and A's stops showing the engine online once its connection to B ended."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from e2e.cluster import Cluster, postgres_database
from flowork_keys import Wallet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

#: Well under the engine's 10 s vitals report, the only way B heard of a token reset
#: before.
WAIT = 5.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with postgres_database() as url:
        running = Cluster(tmp_path, url)
        try:
            yield running
        finally:
            running.close()


class Peer:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()

        async def on_any(event: str, *args: Any) -> None:
            await self.events.put((event, args[0] if args else None))

        async def on_disconnect(*args: Any) -> None:
            self.disconnected.set()

        self.client.on("*", on_any, namespace=namespace)
        self.client.on("disconnect", on_disconnect, namespace=namespace)

    async def connect(self, url: str, auth: Any) -> Peer:
        await self.client.connect(url, namespaces=[self.namespace], auth=auth, wait_timeout=WAIT)
        return self

    async def expect(self, event: str) -> Any:
        got, data = await asyncio.wait_for(self.events.get(), WAIT)
        assert got == event, (got, data)
        return data

    async def close(self) -> None:
        await self.client.disconnect()
        await self.client.shutdown()


def gui_auth(wallet: Wallet) -> dict[str, Any]:
    headers = wallet.headers(wallet.message("flowork_socket_auth", at=time.time()))
    headers.pop("X-Payload-Version")
    return {"headers": headers}


async def test_changes_made_on_one_process_reach_sockets_on_another(cluster: Cluster) -> None:
    a, b = cluster.api("a"), cluster.api("b")
    alice, bob = Wallet(), Wallet()
    rest_a = httpx.AsyncClient(base_url=a.base_url, timeout=30)
    rest_b = httpx.AsyncClient(base_url=b.base_url, timeout=30)
    engine: Peer | None = None
    gui: Peer | None = None
    try:
        bob_id = (await rest_b.get("/api/v1/auth/profile", headers=bob.headers())).json()["id"]
        made = await rest_a.post(
            "/api/v1/user/engines", json={"name": "roaming"}, headers=alice.headers()
        )
        assert made.status_code == 201, made.text
        engine_id, token = made.json()["id"], made.json()["raw_token"]

        async def listed(rest: httpx.AsyncClient) -> str:
            engines = (await rest.get("/api/v1/user/engines", headers=alice.headers())).json()
            return str(next(e["status"] for e in engines if e["id"] == engine_id))

        engine = await Peer("/engine-socket").connect(
            b.base_url, {"engine_id": engine_id, "token": token}
        )
        gui = await Peer("/gui-socket").connect(b.base_url, gui_auth(bob))
        await engine.expect("auth_success")
        assert await listed(rest_b) == "online"
        shared = await rest_a.post(
            f"/api/v1/engines/{engine_id}/shares",
            json={"share_with_identifier": bob.address},
            headers=alice.headers(),
        )
        assert shared.status_code == 201, shared.text
        # B's engine connection and B's GUI session hear of A's share at once.
        assert await engine.expect("force_refresh_auth_list") == {}
        status = await gui.expect("engine_status_update")
        assert status == {"engineId": engine_id, "status": "online", "name": "roaming"}
        # A does not hold the connection: it goes by when B last saw the engine.
        assert await listed(rest_a) == "online"

        revoked = await rest_a.delete(
            f"/api/v1/engines/{engine_id}/shares/{bob_id}", headers=alice.headers()
        )
        assert revoked.status_code == 200, revoked.text
        assert await engine.expect("force_refresh_auth_list") == {}
        assert (await gui.expect("engine_status_update"))["status"] == "revoked"

        reset = await rest_a.post(
            f"/api/v1/user/engines/{engine_id}/reset-token", headers=alice.headers()
        )
        assert reset.status_code == 200, reset.text
        await asyncio.wait_for(engine.disconnected.wait(), WAIT)
        # B held the connection: its list says offline at once; A's, once B's word came.
        assert await listed(rest_b) == "offline"
        for _ in range(int(WAIT / 0.05)):  # B's word travels over NOTIFY: a moment
            if await listed(rest_a) == "offline":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("process A still shows the engine online")
    finally:
        for peer in (gui, engine):
            if peer is not None:
                await peer.close()
        await rest_a.aclose()
        await rest_b.aclose()
