"""flow8 plays against a real server: the approval, filter, skip, defer, retry and cancel
paths, layer results, KV output mapping and ``$kv``, and play listings."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.flow8 import ENDED, Person, Receiver, wait_for_state
from e2e.harness import RunningServer
from e2e.test_e2e_flow8_flows import error_of, flowlet, make_flow

pytestmark = pytest.mark.e2e


def run(person: Person, flow_id: str, args: dict[str, Any] | None = None) -> str:
    answer = person.client.post(f"/api/flows/{flow_id}/run", json={"args": args or {}})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"playId", "state"} and body["state"] == "NEW"
    play_id: str = body["playId"]
    return play_id


def layers(person: Person, play_id: str) -> dict[str, dict[str, Any]]:
    answer = person.client.get(f"/api/plays/{play_id}/layers")
    assert answer.status_code == 200
    return {layer["ref"]: layer for layer in answer.json()}


def test_a_play_runs_its_flowlets_in_order(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(
        alice,
        "Chain",
        flowlet(
            "double", args={"values": {"x": "{{ $args.n * 2 }}", "first": "{{ $prev.args.n }}"}}
        ),
        flowlet("add", args={"values": {"y": "{{ $prev.x + 1 }}", "n": "{{ $args.n }}"}}),
        flowlet("say", "log", args={"message": "{{ $node.add.value.y }}"}),
    )
    play_id = run(alice, flow["id"], {"n": 5})
    play = wait_for_state(server, alice, play_id, ENDED)
    assert play["state"] == "DONE"
    assert play["flowId"] == flow["id"] and play["args"] == {"n": 5}
    assert play["out"] == {"say": {"message": 11}}
    result = layers(alice, play_id)
    assert list(result) == ["double", "add", "say"]
    for layer in result.values():
        assert set(layer) >= {
            "id",
            "ref",
            "state",
            "startedAt",
            "completedAt",
            "out",
            "error",
            "attempts",
        }
        assert layer["state"] == "DONE" and layer["attempts"] == 1
    assert result["double"]["out"] == {"value": {"n": 5, "x": 10, "first": 5}}
    detail = alice.client.get(f"/api/plays/{play_id}").json()
    assert [layer["ref"] for layer in detail["layers"]] == ["double", "add", "say"]


def test_approval_runs_rejection_fails_and_the_approver_is_recorded(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(
        alice,
        "Approve",
        flowlet("prepare"),
        flowlet("ship", "log", args={"message": "go"}, needsApproval=True),
    )
    approved = run(alice, flow["id"])
    waiting = wait_for_state(server, alice, approved, {"WAIT"})
    assert waiting["state"] == "WAIT"
    assert layers(alice, approved)["ship"]["state"] == "WAIT"
    error_of(
        alice.client.post(f"/api/plays/{approved}/approve", json={"ref": "nope"}),
        404,
        "LAYER_NOT_FOUND",
    )
    decided = alice.client.post(
        f"/api/plays/{approved}/approve", json={"ref": "ship", "approved": True, "comment": "ok"}
    )
    assert decided.status_code == 200
    assert wait_for_state(server, alice, approved, ENDED)["state"] == "DONE"
    ship = layers(alice, approved)["ship"]
    assert ship["state"] == "DONE"
    assert ship["approval"]["by"] == alice.id and ship["approval"]["comment"] == "ok"
    again = alice.client.post(f"/api/plays/{approved}/approve", json={"ref": "ship"})
    error_of(again, 409, "CONFLICT")

    rejected = run(alice, flow["id"])
    wait_for_state(server, alice, rejected, {"WAIT"})
    alice.client.post(
        f"/api/plays/{rejected}/approve", json={"ref": "ship", "approved": False, "comment": "no"}
    )
    play = wait_for_state(server, alice, rejected, ENDED)
    assert play["state"] == "FAIL"
    assert play["error"]["code"] == "REJECTED" and play["error"]["ref"] == "ship"
    assert layers(alice, rejected)["ship"]["state"] == "FAIL"


def test_filters_that_do_not_match_end_the_play_filtered(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    condition = [{"field": "{{ $args.amount }}", "operator": "gte", "value": 100}]
    flow = make_flow(
        alice,
        "Filtered",
        flowlet("start"),
        flowlet("big", filters=condition),
        flowlet("after"),
    )
    small = run(alice, flow["id"], {"amount": 5})
    assert wait_for_state(server, alice, small, ENDED)["state"] == "FILTERED"
    assert {ref: layer["state"] for ref, layer in layers(alice, small).items()} == {
        "start": "DONE",
        "big": "FILTERED",
        "after": "SKIP",
    }
    large = run(alice, flow["id"], {"amount": 500})
    assert wait_for_state(server, alice, large, ENDED)["state"] == "DONE"
    listed = alice.client.get("/api/plays", params={"flowId": flow["id"], "state": "FILTERED"})
    assert [p["id"] for p in listed.json()["data"]] == [small]
    done = alice.client.get("/api/plays", params={"flowId": flow["id"], "state": "done"})
    assert [p["id"] for p in done.json()["data"]] == [large]
    error_of(alice.client.get("/api/plays", params={"state": "LOST"}), 400, "VALIDATION_ERROR")


def test_on_error_skip_marks_the_layer_skip_and_goes_on(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(
        alice,
        "Skipping",
        flowlet("parse", "json_parse", args={"json": "{not json"}, onError="skip"),
        flowlet("next", args={"values": {"went_on": True}}),
        flowlet("broken", "json_parse", args={"json": "{"}, onError="continue"),
        flowlet("last", args={"values": {}}),
    )
    play_id = run(alice, flow["id"])
    play = wait_for_state(server, alice, play_id, ENDED)
    assert play["state"] == "DONE"
    result = layers(alice, play_id)
    assert result["parse"]["state"] == "SKIP"
    assert result["parse"]["error"]["code"] == "JSON"
    assert result["next"]["state"] == "DONE"
    assert result["broken"]["state"] == "FAIL"
    assert result["last"]["state"] == "DONE"


def test_a_deferred_flowlet_shows_deferred_until_due(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(alice, "Deferred", flowlet("now"), flowlet("later", deferAfterMs=1500))
    started = time.monotonic()
    play_id = run(alice, flow["id"])
    deferred = wait_for_state(server, alice, play_id, {"DEFERRED"})
    assert deferred["state"] == "DEFERRED"
    later = layers(alice, play_id)["later"]
    assert later["state"] == "DEFERRED" and later["waitingFor"]["kind"] == "timer"
    assert wait_for_state(server, alice, play_id, ENDED)["state"] == "DONE"
    assert time.monotonic() - started >= 1.4
    listed = alice.client.get("/api/plays", params={"flowId": flow["id"]}).json()
    assert listed["data"][0]["state"] == "DONE"


def test_retries_follow_the_flowlet_policy(
    flow8_people: dict[str, Person], server: RunningServer, receiver: Receiver
) -> None:
    alice = flow8_people["alice"]
    retry = {"maxRetries": 3, "initialDelayMs": 50, "backoffMultiplier": 2, "jitter": 0.2}
    flaky = make_flow(
        alice,
        "Flaky",
        flowlet("call", "curl", args={"url": f"{receiver.url}/flaky/2/retry-ok"}, retry=retry),
    )
    play_id = run(alice, flaky["id"])
    assert wait_for_state(server, alice, play_id, ENDED)["state"] == "DONE"
    call = layers(alice, play_id)["call"]
    assert call["attempts"] == 3 and call["out"]["status"] == 200
    hopeless = make_flow(
        alice,
        "Hopeless",
        flowlet(
            "call",
            "curl",
            args={"url": f"{receiver.url}/flaky/99/retry-never"},
            retry={"maxRetries": 2, "initialDelayMs": 10},
        ),
    )
    play_id = run(alice, hopeless["id"])
    play = wait_for_state(server, alice, play_id, ENDED)
    assert play["state"] == "FAIL" and play["error"]["code"] == "HTTP"
    assert layers(alice, play_id)["call"]["attempts"] == 3
    assert receiver.counts["retry-never"] == 3


def test_cancelling_a_waiting_or_running_play_fails_it_cancelled(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    waiting = make_flow(alice, "Cancel waiting", flowlet("hold", needsApproval=True))
    play_id = run(alice, waiting["id"])
    wait_for_state(server, alice, play_id, {"WAIT"})
    cancelled = alice.client.delete(f"/api/plays/{play_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "FAIL"
    assert cancelled.json()["error"]["code"] == "CANCELLED"
    error_of(alice.client.delete(f"/api/plays/{play_id}"), 409, "CONFLICT")

    running = make_flow(
        alice, "Cancel running", flowlet("sleep", "delay", args={"delay_ms": 20000})
    )
    play_id = run(alice, running["id"])
    wait_for_state(server, alice, play_id, {"RUN"})
    cancelled = alice.client.delete(f"/api/plays/{play_id}")
    assert cancelled.json()["state"] == "FAIL"
    assert cancelled.json()["error"]["code"] == "CANCELLED"
    assert layers(alice, play_id)["sleep"]["state"] == "FAIL"


def test_outputs_are_mapped_to_kv_and_kv_is_readable_in_expressions(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    stored = alice.client.post("/api/kv", json={"key": "greeting", "value": {"text": "hello"}})
    assert stored.status_code == 200
    flow = make_flow(
        alice,
        "Mapped",
        flowlet("first", args={"values": {"g": "{{ $kv.greeting.text }}"}}),
        flowlet("second", args={"values": {"again": "{{ $kv.Mapped.first.value.g }}"}}),
        flowlet("quiet", skipOutputMapping=True),
    )
    play_id = run(alice, flow["id"])
    assert wait_for_state(server, alice, play_id, ENDED)["state"] == "DONE"
    result = layers(alice, play_id)
    assert result["second"]["out"]["value"]["again"] == "hello"
    entries = alice.client.get("/api/kv", params={"prefix": "Mapped."}).json()
    assert {e["key"] for e in entries["data"]} == {"Mapped.first", "Mapped.second"}
    first = next(e for e in entries["data"] if e["key"] == "Mapped.first")
    assert first["value"] == {"value": {"g": "hello"}}


def test_play_listing_filters(flow8_people: dict[str, Person], server: RunningServer) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(alice, "Listed", flowlet("a"))
    ids = [run(alice, flow["id"]) for _ in range(3)]
    for play_id in ids:
        wait_for_state(server, alice, play_id, ENDED)
    page = alice.client.get("/api/plays", params={"flowId": flow["id"], "size": 2}).json()
    assert page["total"] == 3 and page["pages"] == 2 and len(page["data"]) == 2
    assert [p["id"] for p in page["data"]] == ids[::-1][:2]  # newest first
    future = alice.client.get("/api/plays", params={"flowId": flow["id"], "from": "2999-01-01"})
    assert future.json()["total"] == 0
    everything = alice.client.get(
        "/api/plays", params={"flowId": flow["id"], "to": "2999-01-01T00:00:00Z"}
    )
    assert everything.json()["total"] == 3
    error_of(alice.client.get("/api/plays", params={"from": "yesterday"}), 400, "VALIDATION_ERROR")
    # Another user sees none of them.
    eve = flow8_people["eve"].client
    assert eve.get("/api/plays", params={"flowId": flow["id"]}).json()["total"] == 0
    error_of(eve.get(f"/api/plays/{ids[0]}"), 404, "PLAY_NOT_FOUND")
