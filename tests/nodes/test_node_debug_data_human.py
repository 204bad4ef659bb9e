"""``debug.log``, ``debug.popup``, ``data.static`` and ``human.approval``."""

from __future__ import annotations

import pytest

from runnel.engine.signals import NodeFailure, WaitForApproval
from runnel.model.execution import ApprovalDecision
from runnel.nodes.data import StaticData
from runnel.nodes.debug import DebugLog, DebugPopup
from runnel.nodes.human import Approval
from runnel.testing.nodes import EmittedEvent, run_node


async def test_log_emits_the_input_message_and_passes_it_on() -> None:
    out, events = await run_node(DebugLog(), inputs={"message": "hello"})
    assert out == {"message": "hello"}
    assert events.events == [EmittedEvent("log", "hello", {"level": "info"})]


async def test_log_writes_objects_as_json_at_the_configured_level() -> None:
    value = {"a": [1, 2], "b": "é"}
    out, events = await run_node(DebugLog(), inputs={"message": value}, config={"level": "WARN"})
    assert out == {"message": value}
    assert events.events == [EmittedEvent("log", '{"a":[1,2],"b":"é"}', {"level": "warning"})]


async def test_log_config_message_wins_over_the_input() -> None:
    out, events = await run_node(
        DebugLog(), inputs={"message": "ignored"}, config={"message": "got 3 rows"}
    )
    assert out == {"message": "got 3 rows"}
    assert events.events[0].message == "got 3 rows"


async def test_log_refuses_an_unknown_level() -> None:
    with pytest.raises(NodeFailure, match="config 'level' must be one of debug, info") as info:
        await run_node(DebugLog(), inputs={"message": "x"}, config={"level": "loud"})
    assert info.value.kind == "config"


async def test_popup_defaults_to_node_name_and_input() -> None:
    out, events = await run_node(DebugPopup(), inputs={"value": {"x": 1}}, node_name="Show it")
    assert out == {"value": {"x": 1}}
    assert events.events == [EmittedEvent("popup", "", {"title": "Show it", "content": {"x": 1}})]


async def test_popup_with_configured_title_and_content_still_passes_the_input() -> None:
    out, events = await run_node(
        DebugPopup(), inputs={"value": 5}, config={"title": "Result", "content": "five"}
    )
    assert out == {"value": 5}
    assert events.events == [EmittedEvent("popup", "", {"title": "Result", "content": "five"})]


async def test_static_fires_its_data() -> None:
    out, _ = await run_node(StaticData(), config={"data": {"rows": [1, 2]}})
    assert out == {"data": {"rows": [1, 2]}}
    out, _ = await run_node(StaticData())
    assert out == {"data": None}


async def test_approval_waits_with_its_message() -> None:
    with pytest.raises(WaitForApproval) as info:
        await run_node(Approval(), inputs={"value": 1}, config={"message": "Ship it?"})
    assert info.value.message == "Ship it?"
    assert info.value.wait == {"kind": "approval", "message": "Ship it?"}


async def test_approval_default_message_names_the_node() -> None:
    with pytest.raises(WaitForApproval) as info:
        await run_node(Approval(), node_name="Deploy")
    assert info.value.message == "Approve Deploy?"


async def test_approved_fires_the_input_and_the_decision() -> None:
    decision = ApprovalDecision(approved=True, by="ana", comment="ok", at=1700000000.0)
    out, _ = await run_node(Approval(), inputs={"value": {"order": 7}}, decision=decision)
    assert out == {
        "approved": {"order": 7},
        "decision": {"approved": True, "by": "ana", "comment": "ok", "at": 1700000000.0},
    }


async def test_rejected_fires_rejected_only() -> None:
    out, _ = await run_node(
        Approval(), inputs={"value": "v"}, decision=ApprovalDecision(approved=False, by="bo")
    )
    assert out["rejected"] == "v"
    assert "approved" not in out
    assert out["decision"]["approved"] is False


async def test_approval_in_simulate_mode_takes_a_pinned_decision_or_waits() -> None:
    pinned = {"approved": "simulated"}
    out, _ = await run_node(Approval(), config={"pinned_output": pinned}, simulate=True)
    assert out == pinned
    with pytest.raises(WaitForApproval):
        await run_node(Approval(), simulate=True)
