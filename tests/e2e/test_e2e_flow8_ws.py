"""``/api/ws`` against a real server: its three ways to authenticate, play, layer and
approval messages for visible plays only, narrowing with ``subscribe``, and refusals."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from e2e.flow8 import ENDED, PASSWORD, Person, wait_for_state, ws_connect
from e2e.harness import RunningServer
from e2e.test_e2e_flow8_flows import flowlet, make_flow
from e2e.test_e2e_flow8_plays import run

pytestmark = pytest.mark.e2e


def read_until(socket: ClientConnection, test: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Messages up to and including the first that passes ``test``."""
    seen: list[dict[str, Any]] = []
    while True:
        message = json.loads(socket.recv(timeout=timeout))
        seen.append(message)
        if test(message):
            return seen


def ended(message: dict[str, Any], play_id: str) -> bool:
    return message["type"] == "play" and message["playId"] == play_id and message["state"] == "DONE"


def test_play_layer_and_approval_messages(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(
        alice,
        "Socket",
        flowlet("a"),
        flowlet("b", "log", args={"message": "x"}, needsApproval=True),
    )
    with ws_connect(server, alice) as socket:
        socket.send(json.dumps({"type": "subscribe", "flowId": flow["id"]}))
        assert json.loads(socket.recv(timeout=30))["type"] == "subscribed"
        play_id = run(alice, flow["id"])
        seen = read_until(socket, lambda m: m["type"] == "approval")
        kinds = [(m["type"], m.get("ref"), m.get("state")) for m in seen]
        assert ("play", None, "RUN") in kinds
        assert ("layer", "a", "RUN") in kinds and ("layer", "a", "DONE") in kinds
        assert ("layer", "b", "WAIT") in kinds
        approval = seen[-1]
        assert approval["playId"] == play_id and approval["ref"] == "b"
        assert approval["flowId"] == flow["id"]
        waiting = read_until(socket, lambda m: m["type"] == "play")
        assert waiting[-1]["state"] == "WAIT"
        alice.client.post(f"/api/plays/{play_id}/approve", json={"ref": "b", "approved": True})
        seen = read_until(socket, lambda m: m["type"] == "play" and m["state"] == "DONE")
        resolved = next(m for m in seen if m["type"] == "approval")
        assert resolved["resolved"] is True and resolved["by"] == alice.id
        done = next(m for m in seen if m["type"] == "layer" and m["state"] == "DONE")
        assert done["ref"] == "b" and done["out"] == {"message": "x"}
        for message in seen:
            assert message["timestamp"].endswith("Z") and isinstance(message["seq"], int)


def test_only_visible_plays_and_subscriptions_narrow(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice, eve = flow8_people["alice"], flow8_people["eve"]
    private = make_flow(alice, "Private", flowlet("a"))
    public = make_flow(eve, "Eve's", flowlet("a"))
    with ws_connect(server, eve) as socket:
        run(alice, private["id"])
        mine = run(eve, public["id"])
        seen = read_until(socket, lambda m: ended(m, mine))
        assert {m["playId"] for m in seen if "playId" in m} == {mine}
        # Asking for someone else's play is an error, not a way in.
        socket.send(json.dumps({"type": "subscribe", "flowId": private["id"]}))
        refused = json.loads(socket.recv(timeout=30))
        assert refused == {**refused, "type": "error", "error": "FLOW_NOT_FOUND"}
        socket.send(json.dumps({"type": "subscribe", "playId": mine}))
        assert json.loads(socket.recv(timeout=30))["playIds"] == [mine]
        other = run(eve, public["id"])  # not subscribed to: filtered out
        wait_for_state(server, eve, other, ENDED)
        socket.send(json.dumps({"type": "ping"}))
        before_pong = read_until(socket, lambda m: m["type"] == "pong")
        assert other not in {m.get("playId") for m in before_pong}
        socket.send(json.dumps({"type": "unsubscribe"}))
        read_until(socket, lambda m: m["type"] == "subscribed" and m["playIds"] == [])
        third = run(eve, public["id"])
        read_until(socket, lambda m: ended(m, third))
        socket.send("not json")
        assert json.loads(socket.recv(timeout=30))["error"] == "VALIDATION_ERROR"


def test_socket_authentication(flow8_people: dict[str, Person], server: RunningServer) -> None:
    alice = flow8_people["alice"]
    url = f"{server.ws_url}/api/ws"
    with connect(f"{url}?token={alice.key}", open_timeout=30) as socket:
        assert json.loads(socket.recv(timeout=30))["userId"] == alice.id
    with httpx.Client(base_url=server.base_url) as browser:
        browser.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
        cookie = f"runnel_session={browser.cookies['runnel_session']}"
    with connect(
        url, additional_headers={"Cookie": cookie, "Origin": server.base_url}, open_timeout=30
    ) as socket:
        assert json.loads(socket.recv(timeout=30))["userId"] == alice.id
    with pytest.raises(InvalidStatus) as refused:
        connect(
            url,
            additional_headers={"Cookie": cookie, "Origin": "https://evil.example"},
            open_timeout=30,
        )
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"] == "FORBIDDEN"
    with pytest.raises(InvalidStatus) as missing:
        connect(url, open_timeout=30)
    assert missing.value.response.status_code == 401
    assert json.loads(missing.value.response.body)["error"] == "UNAUTHORIZED"
    with pytest.raises(InvalidStatus) as wrong:
        connect(f"{url}?token=eyJnot.a.key", open_timeout=30)
    assert wrong.value.response.status_code == 401
