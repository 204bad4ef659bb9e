"""``/api/schedules`` against a real server: CRUD, ``nextRunAt`` in the schedule's time
zone, clear 400s for a bad cron or zone, and rights through the flow. (When fires happen,
DST and catch-up are tested with an injectable clock in tests/scheduler.)"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from e2e.flow8 import Person
from e2e.test_e2e_flow8_flows import PAGE_KEYS, error_of, flowlet, make_flow

pytestmark = pytest.mark.e2e


def test_schedule_crud(flow8_people: dict[str, Person]) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(alice, "Nightly", flowlet("a"))
    made = alice.client.post(
        "/api/schedules",
        json={
            "flowId": flow["id"],
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "args": {"mode": "nightly"},
        },
    )
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert schedule["enabled"] is True and schedule["catchup"] == "latest"
    assert schedule["args"] == {"mode": "nightly"}
    next_run = datetime.fromisoformat(schedule["nextRunAt"].replace("Z", "+00:00"))
    local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) in {(2, 30), (3, 30)}  # 03:30 on a spring-forward day
    listed = alice.client.get("/api/schedules", params={"flowId": flow["id"]}).json()
    assert set(listed) == PAGE_KEYS and [s["id"] for s in listed["data"]] == [schedule["id"]]
    disabled = alice.client.put(f"/api/schedules/{schedule['id']}", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False and disabled.json()["nextRunAt"] is None
    moved = alice.client.put(
        f"/api/schedules/{schedule['id']}",
        json={
            "enabled": True,
            "cron": "0 9 * * 1-5",
            "timezone": "America/New_York",
            "catchup": "none",
        },
    ).json()
    at = datetime.fromisoformat(moved["nextRunAt"].replace("Z", "+00:00"))
    at = at.astimezone(ZoneInfo("America/New_York"))
    assert (at.hour, at.minute) == (9, 0) and at.weekday() < 5
    assert alice.client.delete(f"/api/schedules/{schedule['id']}").status_code == 200
    error_of(alice.client.delete(f"/api/schedules/{schedule['id']}"), 404, "SCHEDULE_NOT_FOUND")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"cron": "61 * * * *"}, "out of range"),
        ({"cron": "* * *"}, "expected 5 fields"),
        ({"cron": "0 0 * * * *"}, "expected 5 fields"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"catchup": "sometimes"}, "catchup"),
    ],
)
def test_bad_schedules_are_400_saying_why(
    flow8_people: dict[str, Person], fields: dict[str, str], says: str
) -> None:
    alice = flow8_people["alice"]
    flow = make_flow(alice, "Bad schedule", flowlet("a"))
    body = {"flowId": flow["id"], "cron": "0 * * * *", "timezone": "UTC", **fields}
    answer = alice.client.post("/api/schedules", json=body)
    assert says in error_of(answer, 400, "VALIDATION_ERROR")["message"]


def test_schedules_follow_the_flow_rights(flow8_people: dict[str, Person]) -> None:
    alice, eve = flow8_people["alice"], flow8_people["eve"]
    flow = make_flow(alice, "Alice's", flowlet("a"))
    body = {"flowId": flow["id"], "cron": "0 * * * *"}
    error_of(eve.client.post("/api/schedules", json=body), 404, "FLOW_NOT_FOUND")
    schedule = alice.client.post("/api/schedules", json=body).json()
    error_of(eve.client.get(f"/api/schedules/{schedule['id']}"), 404, "SCHEDULE_NOT_FOUND")
    error_of(
        eve.client.put(f"/api/schedules/{schedule['id']}", json={"enabled": False}),
        404,
        "SCHEDULE_NOT_FOUND",
    )
    assert schedule["id"] not in [s["id"] for s in eve.client.get("/api/schedules").json()["data"]]
