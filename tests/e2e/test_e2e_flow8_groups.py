"""flow8 groups against a real server: members' roles decide who sees, runs and edits a
group's flows (a viewer cannot run, a runner cannot edit, a stranger gets 404), and group
KV scopes."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.flow8 import ENDED, Person, wait_for_state
from e2e.harness import RunningServer
from e2e.test_e2e_flow8_flows import PAGE_KEYS, error_of, flowlet

pytestmark = pytest.mark.e2e


def make_group(people: dict[str, Person]) -> dict[str, Any]:
    alice = people["alice"].client
    answer = alice.post(
        "/api/groups",
        json={
            "name": "ops",
            "description": "operations",
            "members": [
                {"userId": people["bob"].id, "role": "viewer"},
                {"email": people["carol"].email, "role": "runner"},
                {"userId": people["dave"].id, "role": "editor"},
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    group: dict[str, Any] = answer.json()
    return group


def test_group_crud(flow8_people: dict[str, Person]) -> None:
    alice = flow8_people["alice"].client
    group = make_group(flow8_people)
    roles = {m["userId"]: m["role"] for m in group["members"]}
    assert roles == {
        flow8_people["alice"].id: "owner",
        flow8_people["bob"].id: "viewer",
        flow8_people["carol"].id: "runner",
        flow8_people["dave"].id: "editor",
    }
    assert group["myRole"] == "owner"
    listed = flow8_people["bob"].client.get("/api/groups").json()
    assert set(listed) == PAGE_KEYS
    assert group["id"] in [g["id"] for g in listed["data"]]
    assert group["id"] not in [
        g["id"] for g in flow8_people["eve"].client.get("/api/groups").json()["data"]
    ]
    renamed = alice.put(f"/api/groups/{group['id']}", json={"name": "operations"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "operations"
    assert len(renamed.json()["members"]) == 4  # members left out are kept
    # Only owners manage a group; a stranger does not learn it exists.
    error_of(
        flow8_people["dave"].client.put(f"/api/groups/{group['id']}", json={"name": "mine"}),
        403,
        "FORBIDDEN",
    )
    error_of(
        flow8_people["eve"].client.delete(f"/api/groups/{group['id']}"), 404, "GROUP_NOT_FOUND"
    )
    no_owner = alice.put(
        f"/api/groups/{group['id']}",
        json={"members": [{"userId": flow8_people["bob"].id, "role": "viewer"}]},
    )
    assert "owner" in error_of(no_owner, 400, "VALIDATION_ERROR")["message"]
    unknown = alice.post(
        "/api/groups", json={"name": "x", "members": [{"userId": "nobody", "role": "viewer"}]}
    )
    error_of(unknown, 400, "VALIDATION_ERROR")
    bad_role = alice.post(
        "/api/groups", json={"name": "x", "members": [{"userId": "a", "role": "boss"}]}
    )
    error_of(bad_role, 400, "VALIDATION_ERROR")
    assert alice.delete(f"/api/groups/{group['id']}").status_code == 200
    error_of(alice.delete(f"/api/groups/{group['id']}"), 404, "GROUP_NOT_FOUND")


def test_roles_decide_what_members_may_do(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    group = make_group(flow8_people)
    alice, bob, carol, dave, eve = (
        flow8_people[n] for n in ("alice", "bob", "carol", "dave", "eve")
    )
    made = alice.client.post(
        "/api/flows",
        json={
            "name": "Shared",
            "groupId": group["id"],
            "flowlets": [flowlet("a"), flowlet("b", needsApproval=True)],
        },
    )
    assert made.status_code == 201
    flow = made.json()
    path = f"/api/flows/{flow['id']}"
    # Everyone in the group sees it; a stranger gets 404, as if it did not exist.
    for member in (bob, carol, dave):
        assert member.client.get(path).status_code == 200
        assert flow["id"] in [f["id"] for f in member.client.get("/api/flows").json()["data"]]
    error_of(eve.client.get(path), 404, "FLOW_NOT_FOUND")
    error_of(eve.client.post(f"{path}/run", json={}), 404, "FLOW_NOT_FOUND")
    assert flow["id"] not in [f["id"] for f in eve.client.get("/api/flows").json()["data"]]
    # A viewer cannot run.
    error_of(bob.client.post(f"{path}/run", json={}), 403, "FORBIDDEN")
    # A runner runs and approves but cannot edit.
    ran = carol.client.post(f"{path}/run", json={"args": {}})
    assert ran.status_code == 202
    play_id = ran.json()["playId"]
    error_of(carol.client.put(path, json={"name": "Mine"}), 403, "FORBIDDEN")
    error_of(carol.client.post(f"{path}/layers", json=flowlet("c")), 403, "FORBIDDEN")
    error_of(carol.client.delete(path), 403, "FORBIDDEN")
    wait_for_state(server, carol, play_id, {"WAIT"})
    error_of(bob.client.post(f"/api/plays/{play_id}/approve", json={"ref": "b"}), 403, "FORBIDDEN")
    error_of(
        eve.client.post(f"/api/plays/{play_id}/approve", json={"ref": "b"}), 404, "PLAY_NOT_FOUND"
    )
    assert bob.client.get(f"/api/plays/{play_id}").status_code == 200  # a viewer sees it
    carol.client.post(f"/api/plays/{play_id}/approve", json={"ref": "b", "approved": True})
    assert wait_for_state(server, carol, play_id, ENDED)["state"] == "DONE"
    # An editor edits.
    edited = dave.client.put(path, json={"name": "Shared (edited)"})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    # Only editors of a group may put flows in it.
    error_of(
        carol.client.post("/api/flows", json={"name": "x", "groupId": group["id"]}),
        403,
        "FORBIDDEN",
    )
    error_of(
        eve.client.post("/api/flows", json={"name": "x", "groupId": group["id"]}),
        404,
        "GROUP_NOT_FOUND",
    )


def test_kv_is_scoped_to_the_owner_or_the_group(flow8_people: dict[str, Person]) -> None:
    group = make_group(flow8_people)
    alice, bob, eve = (flow8_people[n].client for n in ("alice", "bob", "eve"))
    mine = alice.post("/api/kv", json={"key": "scoped.secret-ish", "value": 1}).json()
    assert mine["groupId"] is None
    shared = alice.post(
        "/api/kv", json={"key": "scoped.team", "value": [1, 2], "groupId": group["id"]}
    ).json()
    upserted = alice.post(
        "/api/kv",
        json={"key": "scoped.team", "value": [3], "groupId": group["id"], "ttlSeconds": 3600},
    ).json()
    assert upserted["id"] == shared["id"] and upserted["value"] == [3]
    assert upserted["expiresAt"] is not None
    # A viewer reads the group's scope but cannot write it; a stranger sees nothing of it.
    read = bob.get("/api/kv", params={"groupId": group["id"], "prefix": "scoped."}).json()
    assert [e["key"] for e in read["data"]] == ["scoped.team"]
    error_of(
        bob.post("/api/kv", json={"key": "k", "value": 1, "groupId": group["id"]}),
        403,
        "FORBIDDEN",
    )
    error_of(bob.delete(f"/api/kv/{shared['id']}"), 403, "FORBIDDEN")
    error_of(eve.get("/api/kv", params={"groupId": group["id"]}), 404, "GROUP_NOT_FOUND")
    error_of(eve.delete(f"/api/kv/{mine['id']}"), 404, "KV_ENTRY_NOT_FOUND")
    assert bob.get("/api/kv", params={"prefix": "scoped."}).json()["total"] == 0
    assert alice.delete(f"/api/kv/{mine['id']}").status_code == 200
    error_of(alice.delete(f"/api/kv/{mine['id']}"), 404, "KV_ENTRY_NOT_FOUND")
    big = alice.post("/api/kv", json={"key": "big", "value": "x" * 300_000})
    error_of(big, 413, "PAYLOAD_TOO_LARGE")
    bad = alice.post("/api/kv", json={"key": "", "value": 1, "ttlSeconds": -1})
    error_of(bad, 400, "VALIDATION_ERROR")
