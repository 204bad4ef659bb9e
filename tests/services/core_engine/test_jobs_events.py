"""Canonical events -> Core Engine job messages, one event at a time."""

from __future__ import annotations

from typing import Any

import pytest

from runnel.model.events import Event, EventType
from runnel.model.execution import ExecutionStatus
from runnel.model.workflow import Node, Workflow
from runnel.services.core_engine.job_events import (
    FLOWORK_STATUS,
    JobRenderer,
    flowork_status,
    iso_time,
    status_update,
)

WORKFLOW = Workflow(
    id="wf",
    nodes=(
        Node(
            "a", "debug.popup", name="Show", extra={"flowork": {"module_id": "debug_popup_module"}}
        ),
        Node("b", "time.delay"),
    ),
)


def event(type_: EventType, node_id: str | None = "a", **data: Any) -> Event:
    return Event("job", 1, type_, 1_700_000_000.25, "wf", node_id, data)


def test_every_status_has_one_flowork_name_and_jobs_fold_the_in_between_ones() -> None:
    assert set(FLOWORK_STATUS) == set(ExecutionStatus)
    assert flowork_status(ExecutionStatus.CANCELLED) == "STOPPED"
    assert flowork_status(ExecutionStatus.WAITING) == "RUNNING"
    assert flowork_status(ExecutionStatus.QUEUED) == "RUNNING"
    assert flowork_status(ExecutionStatus.PAUSED) == "PAUSED"


def test_times_and_status_updates() -> None:
    assert iso_time(1_700_000_000.2509) == "2023-11-14T22:13:20.250Z"
    failed = status_update("j", "FAILED", start_time=1.0, end_time=2.0, error="boom")
    assert failed["status_data"]["error"] == "boom" and "result" not in failed["status_data"]
    running = status_update("j", "RUNNING", start_time=None, result={"x": 1})
    assert running["status_data"]["start_time"] is None
    assert "result" not in running["status_data"] and "error" not in running["status_data"]


def test_node_messages() -> None:
    renderer = JobRenderer("job", WORKFLOW, "P")
    renderer.begin({"k": 1})
    (start,) = renderer.render(event(EventType.NODE_STARTED, node_name="Show"))
    assert start == {
        "type": "NODE_EXECUTION_METRIC",
        "workflow_context_id": "job",
        "node_id": "a",
        "status": "RUNNING",
        "timestamp": "2023-11-14T22:13:20.250Z",
    }
    assert renderer.active_node_id == "a"
    (end,) = renderer.render(
        event(
            EventType.NODE_FINISHED,
            status="succeeded",
            duration_ms=1.23456,
            outputs_size=9,
            node_name="Show",
        )
    )
    assert end["module_id"] == "debug_popup_module" and end["preset_name"] == "P"
    assert end["execution_time_ms"] == 1.235
    assert (end["payload_size_in_bytes"], end["payload_size_out_bytes"]) == (7, 9)
    assert renderer.active_node_id is None
    # A node that never started gets no metric; a continued failure ended at node.failed.
    assert renderer.render(event(EventType.NODE_FINISHED, "b", status="skipped")) == []
    assert renderer.render(event(EventType.NODE_FINISHED, "b", status="failed")) == []


def test_failures_retries_and_log_lines() -> None:
    renderer = JobRenderer("job", WORKFLOW)
    error = {"message": "boom", "kind": "node"}
    (retry,) = renderer.render(
        event(EventType.NODE_FAILED, "b", error=error, will_retry=True, attempt=1)
    )
    assert retry["level"] == "WARN" and retry["source"] == "Node: b"
    log, metric = renderer.render(
        event(EventType.NODE_FAILED, "b", error=error, will_retry=False, duration_ms=2.0)
    )
    assert (log["level"], log["message"]) == ("ERROR", "boom")
    assert (metric["status"], metric["module_id"]) == ("ERROR", "time.delay")
    for data, level in (
        ({"kind": "log", "message": "m", "level": "success"}, "SUCCESS"),
        ({"kind": "log", "message": "m", "level": "warning"}, "WARN"),
        ({"kind": "info", "message": "m"}, "INFO"),
        ({"kind": "warning", "message": "m"}, "WARN"),
        ({"kind": "progress", "message": "", "percent": 50}, "DEBUG"),
    ):
        (line,) = renderer.render(event(EventType.NODE_EVENT, **data))
        assert line["level"] == level and line["source"] == "Node: Show"
    assert renderer.render(event(EventType.NODE_EVENT, kind="data", port="p", value=1)) == []


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        (
            EventType.EDGE_TRAVERSED,
            {"edge_id": "c1", "target": "b", "value": {"x": 1}},
            {"type": "CONNECTION_STATUS_UPDATE", "connection_id": "c1", "status": "ACTIVE"},
        ),
        (
            EventType.DEBUG_POPUP,
            {"title": "T", "content": {"x": 1}},
            {"type": "SHOW_DEBUG_POPUP", "title": "T", "content": {"x": 1}},
        ),
        (
            EventType.APPROVAL_REQUESTED,
            {"message": "ok?", "node_name": "Show"},
            {"type": "MANUAL_APPROVAL_REQUESTED", "module_id": "a", "message": "ok?"},
        ),
        (
            EventType.APPROVAL_RESOLVED,
            {"approved": False, "by": "0xabc", "comment": None},
            {"type": "log", "message": "Show rejected by 0xabc", "level": "INFO"},
        ),
    ],
)
def test_edges_popups_and_approvals(
    type_: EventType, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    (message,) = JobRenderer("job", WORKFLOW).render(event(type_, **data))
    assert message["workflow_context_id"] == "job"
    assert expected.items() <= message.items()


def test_execution_events_are_the_job_services_to_show() -> None:
    renderer = JobRenderer("job", WORKFLOW)
    for type_ in (EventType.EXECUTION_STARTED, EventType.EXECUTION_STATUS):
        assert renderer.render(event(type_, None)) == []


def test_edge_values_count_as_the_targets_input_size() -> None:
    renderer = JobRenderer("job", WORKFLOW)
    renderer.begin({})
    renderer.render(event(EventType.EDGE_TRAVERSED, "a", edge_id="c", target="b", value=[1, 2]))
    (end,) = renderer.render(event(EventType.NODE_FINISHED, "b", status="succeeded"))
    assert end["payload_size_in_bytes"] == len("[1,2]")
