"""``CoreEngine.handle``: every non-job message of seed 002, over a real SQLite platform."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from typing import Any

import pytest
from sqlalchemy import text

from flowork_keys import Wallet, preset_signature
from runnel.services.core_engine import CoreEngine, Outgoing, VitalsSampler
from runnel.services.core_engine.engine_settings import DEFAULTS
from runnel.services.errors import InvalidInput
from runnel.store.connect import create_store_engine
from services.core_engine.engine_setup import Setup

WORKFLOW: dict[str, Any] = {
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


def error_of(answers: list[dict[str, Any]]) -> str:
    assert len(answers) == 1 and answers[0]["type"] == "error", answers
    assert set(answers[0]) == {"type", "error"}
    message: str = answers[0]["error"]
    return message


async def save(setup: Setup, wallet: Wallet, name: str, data: Any = None) -> dict[str, Any]:
    data = WORKFLOW if data is None else data
    payload = {
        "type": "save_preset",
        "name": name,
        "workflow_data": data,
        "signature": preset_signature(wallet, data),
    }
    return await setup.ask_one(wallet, payload)


# -- the dispatch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"type": "format_disk"}, "Unknown message type: format_disk"),
        ({}, "Missing field: type"),
        ({"type": 7}, "Missing field: type"),
        ({"type": "load_preset"}, "Missing field: name"),
        ({"type": "delete_preset", "name": ""}, "Missing field: name"),
        ({"type": "save_preset", "name": "x", "signature": "0x"}, "Missing field: workflow_data"),
        ({"type": "save_preset", "name": "x", "workflow_data": {}}, "Missing field: signature"),
        ({"type": "save_settings"}, "Missing field: settings"),
        ({"type": "save_settings", "settings": []}, "Missing field: settings"),
        ({"type": "update_variable", "name": "A"}, "Missing field: data"),
        ({"type": "update_variable", "data": {}}, "Missing field: name"),
        ({"type": "delete_variable"}, "Missing field: name"),
        ({"type": "request_directory_list"}, "Missing field: path"),
        ({"type": "load_preset", "name": "x", "owner_id": 5}, "Invalid field: owner_id"),
    ],
)
async def test_bad_payloads_answer_an_error(
    setup: Setup, payload: dict[str, Any], error: str
) -> None:
    assert error_of(await setup.ask(setup.owner, payload)).startswith(error)


async def test_job_messages_go_to_the_job_service(setup: Setup) -> None:
    answers = await setup.ask(setup.owner, {"type": "stop_workflow", "job_id": "nope"})
    if setup.engine.jobs is None:
        assert error_of(answers) == "stop_workflow is not available on this engine yet"
    else:
        assert answers and all(isinstance(a.get("type", ""), str) for a in answers)


async def test_an_unexpected_failure_answers_an_error(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(address: str) -> list[Any]:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(setup.platform.flowork.presets, "list", broken)
    answers = await setup.ask(setup.owner, {"type": "request_presets_list"})
    assert error_of(answers) == "request_presets_list failed: internal error"


# -- presets ----------------------------------------------------------------------------


async def test_presets_save_list_load_delete(setup: Setup) -> None:
    owner = setup.owner
    listed = await setup.ask_one(owner, {"type": "request_presets_list"})
    assert listed == {"type": "presets_list_response", "presets": []}

    saved = await save(setup, owner, "Daily report")
    assert saved == {"type": "presets_list_response", "presets": [{"name": "Daily report"}]}
    changed = {**WORKFLOW, "nodes": []}
    await save(setup, owner, "Daily report", changed)
    await save(setup, owner, "Another")

    listed = await setup.ask_one(owner, {"type": "request_presets_list"})
    assert listed["presets"] == [{"name": "Another"}, {"name": "Daily report"}]
    loaded = await setup.ask_one(owner, {"type": "load_preset", "name": "Daily report"})
    assert loaded == {
        "type": "load_preset_response",
        "name": "Daily report",
        "workflow_data": changed,
    }

    deleted = await setup.ask_one(owner, {"type": "delete_preset", "name": "Another"})
    assert deleted == {"type": "presets_list_response", "presets": [{"name": "Daily report"}]}
    assert error_of(await setup.ask(owner, {"type": "delete_preset", "name": "Another"})) == (
        "Preset Another not found"
    )
    assert "not found" in error_of(await setup.ask(owner, {"type": "load_preset", "name": "No"}))


async def test_a_preset_with_a_wrong_signature_is_not_saved(setup: Setup) -> None:
    other = Wallet()
    payload = {
        "type": "save_preset",
        "name": "Forged",
        "workflow_data": WORKFLOW,
        "signature": preset_signature(other, WORKFLOW),
    }
    assert "signature" in error_of(await setup.ask(setup.owner, payload))
    listed = await setup.ask_one(setup.owner, {"type": "request_presets_list"})
    assert listed["presets"] == []


async def test_a_preset_whose_chain_is_broken_is_refused(setup: Setup) -> None:
    await save(setup, setup.owner, "Daily")
    await save(setup, setup.owner, "Daily", {**WORKFLOW, "nodes": []})
    engine = create_store_engine(setup.platform.store.url, "admin")
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE preset_versions SET workflow_data = :data WHERE version = 1"),
                {"data": json.dumps({"nodes": [], "connections": [], "x": 1})},
            )
    finally:
        engine.dispose()
    error = error_of(await setup.ask(setup.owner, {"type": "load_preset", "name": "Daily"}))
    assert "corrupt" in error


async def test_presets_belong_to_their_address(setup: Setup) -> None:
    friend = Wallet()
    await setup.share_with(friend)
    await save(setup, setup.owner, "Mine")
    listed = await setup.ask_one(friend, {"type": "request_presets_list"})
    assert listed["presets"] == []
    # The owner's preset by owner id, without a share link: refused.
    error = error_of(
        await setup.ask(
            friend, {"type": "load_preset", "name": "Mine", "owner_id": setup.owner.lower}
        )
    )
    assert "share link" in error


async def test_a_share_link_loads_the_owners_preset_within_its_level(setup: Setup) -> None:
    friend = Wallet()
    await setup.share_with(friend)
    await save(setup, setup.owner, "Shared one")
    link = await setup.platform.flowork.share_links.create(setup.owner_id, "Shared one", "view")
    loaded = await setup.ask_one(
        friend,
        {
            "type": "load_preset",
            "name": "Shared one",
            "owner_id": setup.owner_id,
            "share_token": link.token,
        },
    )
    assert loaded == {
        "type": "load_preset_response",
        "name": "Shared one",
        "workflow_data": WORKFLOW,
    }
    # By the owner's address too.
    by_address = await setup.ask_one(
        friend,
        {
            "type": "load_preset",
            "name": "Shared one",
            "owner_id": setup.owner.address,
            "share_token": link.token,
        },
    )
    assert by_address["workflow_data"] == WORKFLOW
    # A view link does not let the holder save.
    save_payload = {
        "type": "save_preset",
        "name": "Shared one",
        "owner_id": setup.owner_id,
        "share_token": link.token,
        "workflow_data": {"nodes": [], "connections": []},
        "signature": preset_signature(friend, {"nodes": [], "connections": []}),
    }
    assert "does not allow save" in error_of(await setup.ask(friend, save_payload))
    # view-edit-run does: a new version of the owner's preset, signed by the friend.
    await setup.platform.flowork.share_links.update(setup.owner_id, link.id, "view-edit-run")
    save_payload["signature"] = preset_signature(friend, save_payload["workflow_data"])
    await setup.ask_one(friend, save_payload)
    mine = await setup.ask_one(setup.owner, {"type": "load_preset", "name": "Shared one"})
    assert mine["workflow_data"] == {"nodes": [], "connections": []}
    # A link for another preset grants nothing here.
    wrong = {"type": "load_preset", "name": "Other", "share_token": link.token}
    assert "another workflow" in error_of(await setup.ask(friend, wrong))
    # A deleted link stops working at once.
    await setup.platform.flowork.share_links.delete(setup.owner_id, link.id)
    gone = {"type": "load_preset", "name": "Shared one", "share_token": link.token}
    assert "not found" in error_of(await setup.ask(friend, gone))


# -- settings ---------------------------------------------------------------------------


async def test_settings_start_with_the_defaults_and_keep_what_is_saved(setup: Setup) -> None:
    answer = await setup.ask_one(setup.owner, {"type": "request_settings"})
    assert answer == {"type": "settings_response", "settings": dict(DEFAULTS)}
    assert answer["settings"]["language"] == "en"
    assert answer["settings"]["notifications_duration_seconds"] == 5
    assert answer["settings"]["notifications_position"] == "bottom_right"

    saved = await setup.ask_one(
        setup.owner,
        {"type": "save_settings", "settings": {"language": "pt-BR", "webhook_port": 9000}},
    )
    expected = {**DEFAULTS, "language": "pt-BR", "webhook_port": 9000}
    assert saved == {"type": "settings_response", "settings": expected}
    again = await setup.ask_one(setup.owner, {"type": "request_settings"})
    assert again["settings"] == expected

    # Another user of the engine has their own.
    friend = Wallet()
    await setup.share_with(friend)
    theirs = await setup.ask_one(friend, {"type": "request_settings"})
    assert theirs["settings"] == dict(DEFAULTS)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"colour": "red"}, "colour is not a setting"),
        ({"webhook_port": 80}, "webhook_port must be a whole number from 1024 to 65535"),
        ({"webhook_port": 70000}, "webhook_port"),
        ({"webhook_port": "8080"}, "webhook_port"),
        ({"webhook_port": True}, "webhook_port"),
        ({"notifications_position": "middle"}, "notifications_position must be one of"),
        ({"notifications_enabled": "yes"}, "notifications_enabled must be true or false"),
        ({"notifications_duration_seconds": 0}, "notifications_duration_seconds"),
        ({"language": "English!"}, "language"),
        ({"global_error_workflow_preset": 5}, "global_error_workflow_preset"),
        ({"global_error_workflow_preset": "Missing"}, "names no preset of yours: Missing"),
        ({"language": "de", "webhook_port": 1}, "webhook_port"),
    ],
)
async def test_invalid_settings_change_nothing(
    setup: Setup, settings: dict[str, Any], problem: str
) -> None:
    error = error_of(await setup.ask(setup.owner, {"type": "save_settings", "settings": settings}))
    assert error.startswith("Invalid settings") and problem in error
    answer = await setup.ask_one(setup.owner, {"type": "request_settings"})
    assert answer["settings"] == dict(DEFAULTS)


async def test_the_global_error_workflow_is_one_of_the_users_presets(setup: Setup) -> None:
    await save(setup, setup.owner, "On failure")
    saved = await setup.ask_one(
        setup.owner,
        {
            "type": "save_settings",
            "settings": {
                "global_error_handler_enabled": True,
                "global_error_workflow_preset": "On failure",
            },
        },
    )
    assert saved["settings"]["global_error_workflow_preset"] == "On failure"
    cleared = await setup.ask_one(
        setup.owner,
        {"type": "save_settings", "settings": {"global_error_workflow_preset": ""}},
    )
    assert cleared["settings"]["global_error_workflow_preset"] == ""
    assert cleared["settings"]["global_error_handler_enabled"] is True


# -- variables --------------------------------------------------------------------------


async def test_variables_update_list_masked_and_delete(setup: Setup) -> None:
    owner = setup.owner
    empty = await setup.ask_one(owner, {"type": "request_variables"})
    assert empty == {"type": "variables_response", "variables": []}
    await setup.ask_one(
        owner,
        {
            "type": "update_variable",
            "name": "API_KEY",
            "data": {"value": "s3cret", "is_secret": True},
        },
    )
    answer = await setup.ask_one(
        owner, {"type": "update_variable", "name": "CITY", "data": {"value": "Lisbon"}}
    )
    assert answer == {
        "type": "variables_response",
        "variables": [
            {
                "name": "API_KEY",
                "value": "",
                "values": [],
                "mode": "single",
                "is_secret": True,
                "is_enabled": True,
            },
            {
                "name": "CITY",
                "value": "Lisbon",
                "values": [],
                "mode": "single",
                "is_secret": False,
                "is_enabled": True,
            },
        ],
    }
    assert "s3cret" not in json.dumps(await setup.ask(owner, {"type": "request_variables"}))
    # The secret is kept (and used by runs) although never shown.
    values = await setup.platform.flowork.variables.values_for_run(owner.address)
    assert values == {"API_KEY": "s3cret", "CITY": "Lisbon"}

    bad = {"type": "update_variable", "name": "lower", "data": {"value": 1}}
    assert "name" in error_of(await setup.ask(owner, bad))
    deleted = await setup.ask_one(owner, {"type": "delete_variable", "name": "CITY"})
    assert [v["name"] for v in deleted["variables"]] == ["API_KEY"]
    assert "not found" in error_of(
        await setup.ask(owner, {"type": "delete_variable", "name": "CITY"})
    )


# -- components -------------------------------------------------------------------------


async def test_components_are_listed_by_kind(setup: Setup) -> None:
    bad = {"type": "request_components_list", "component_type": "gadgets"}
    assert "component_type must be one of" in error_of(await setup.ask(setup.owner, bad))
    payload = {"type": "request_components_list", "component_type": "modules"}
    answers = await setup.ask(setup.owner, payload)
    if importlib.util.find_spec("runnel.services.components") is None:
        assert error_of(answers) == "Components are not available on this engine"
        return
    assert answers[0]["type"] == "components_list_response"
    assert answers[0]["component_type"] == "modules"
    assert isinstance(answers[0]["components"], list) and answers[0]["components"]


# -- what goes out unasked --------------------------------------------------------------


async def test_engine_status_updates_carry_real_figures(setup: Setup) -> None:
    engine = CoreEngine(
        setup.engine.engine_id, setup.engine.authority, setup.engine.parts, status_interval=0.01
    )
    heard: list[Outgoing] = []
    arrived = asyncio.Event()

    def listener(outgoing: Outgoing) -> None:
        heard.append(outgoing)
        arrived.set()

    def failing(outgoing: Outgoing) -> None:
        raise RuntimeError("a broken listener does not stop the others")

    engine.listen(failing)
    stop = engine.listen(listener)
    await engine.start()
    try:
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await engine.stop()
    stop()
    stop()  # twice is harmless
    message = dict(heard[0].message)
    assert heard[0].audience is None
    assert set(message) == {"type", "engineId", "isBusy", "cpuPercent", "memoryPercent"}
    assert message["type"] == "engine_status_update"
    assert message["engineId"] == setup.engine.engine_id
    assert message["isBusy"] is False
    assert 0.0 <= message["cpuPercent"] <= 100.0
    assert 0.0 < message["memoryPercent"] <= 100.0


def test_vitals_from_proc_files(tmp_path: Any) -> None:
    stat, meminfo = tmp_path / "stat", tmp_path / "meminfo"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    250 kB\n")
    sampler = VitalsSampler(proc_stat=stat, proc_meminfo=meminfo)
    # 300 more jiffies, 150 of them busy: 50 %.
    stat.write_text("cpu  200 0 150 950 0 0 0 0 0 0\n")
    vitals = sampler.sample()
    assert vitals.cpu_percent == 50.0
    assert vitals.memory_percent == 75.0


def test_vitals_without_proc(tmp_path: Any) -> None:
    sampler = VitalsSampler(proc_stat=tmp_path / "none", proc_meminfo=tmp_path / "none")
    sum(i * i for i in range(200_000))  # some CPU time of this process
    vitals = sampler.sample()
    assert 0.0 <= vitals.cpu_percent <= 100.0
    assert vitals.memory_percent == 0.0


class FakeJobs:
    """A job service that records what it is asked and says it is busy."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit
        self.asked: list[tuple[str, str]] = []
        self.started = self.stopped = False
        self.is_busy = True

    async def handle(
        self, user: Any, payload: Any, *, preset_owner: str | None = None
    ) -> list[dict[str, Any]]:
        self.asked.append((user.address, payload["type"]))
        if payload.get("job_id") == "bad":
            raise InvalidInput("Invalid job: job_id bad")
        self.emit(Outgoing({"type": "log", "message": "started"}, frozenset({user.address})))
        return [{"type": "execute_workflow_response", "job_id": payload.get("job_id")}]

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_job_messages_reach_the_job_service_and_its_events_the_listeners(
    setup: Setup,
) -> None:
    made: list[FakeJobs] = []

    def factory(emit: Any) -> FakeJobs:
        made.append(FakeJobs(emit))
        return made[0]

    engine = CoreEngine(
        setup.engine.engine_id, setup.engine.authority, setup.engine.parts, jobs=factory
    )
    heard: list[Outgoing] = []
    engine.listen(heard.append)
    await engine.start()
    jobs = made[0]
    assert jobs.started and engine.jobs is jobs
    user = setup.user(setup.owner)
    answers = await engine.handle(user, {"type": "execute_workflow", "job_id": "j1"})
    assert answers == [{"type": "execute_workflow_response", "job_id": "j1"}]
    assert heard == [Outgoing({"type": "log", "message": "started"}, frozenset({user.address}))]
    bad = await engine.handle(user, {"type": "stop_workflow", "job_id": "bad"})
    assert error_of(bad) == "Invalid job: job_id bad"
    assert jobs.asked == [(user.address, "execute_workflow"), (user.address, "stop_workflow")]
    assert engine.status_message()["isBusy"] is True
    await engine.stop()
    assert jobs.stopped
