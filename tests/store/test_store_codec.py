"""The codec turns every model value into JSON and back, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from runnel.model import (
    ApprovalDecision,
    Edge,
    Event,
    EventType,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    Node,
    NodeError,
    NodeRun,
    NodeStatus,
    Workflow,
)
from runnel.store import codec

from .helpers import full_workflow


def test_workflow_round_trips_through_json() -> None:
    workflow = full_workflow()
    text = codec.dumps(codec.workflow_to_dict(workflow))
    assert codec.workflow_from_dict(codec.loads(text)) == workflow


def test_default_workflow_round_trips() -> None:
    workflow = Workflow(id="w")
    assert (
        codec.workflow_from_dict(codec.loads(codec.dumps(codec.workflow_to_dict(workflow))))
        == workflow
    )


def test_missing_keys_take_the_defaults() -> None:
    workflow = codec.workflow_from_dict(
        {
            "id": "w",
            "nodes": [{"id": "n", "type": "debug.log"}],
            "edges": [{"id": "e", "source": "n", "target": "n"}],
        }
    )
    assert workflow == Workflow(
        id="w",
        nodes=(Node(id="n", type="debug.log"),),
        edges=(Edge(id="e", source="n", target="n"),),
    )


@pytest.mark.parametrize(
    "value",
    [
        b"\x00\xffraw",
        {"body": b"abc", "nested": [b"", {"deep": b"\x01"}]},
        {"$bytes": "not really bytes"},
        {"$dict": {"a": 1}},
        {"$bytes": b"both"},
        [{"$other": 1}, {"$bytes": 1, "second": 2}],
        {"text": '{"$bytes": "x"}'},
        {"unicode": "é😀", "big": 2**62, "float": 0.1, "none": None, "bool": False},
    ],
)
def test_values_round_trip_losslessly(value: Any) -> None:
    assert codec.loads(codec.dumps(value)) == value


def test_bytes_are_tagged_as_base64() -> None:
    assert codec.dumps({"b": b"hi"}) == '{"b":{"$bytes":"aGk="}}'


def test_plain_json_is_plain() -> None:
    assert codec.dumps({"a": [1, "x"]}) == '{"a":[1,"x"]}'
    assert codec.loads(b'{"a":[1,"x"]}') == {"a": [1, "x"]}


def test_tuples_and_mappings_come_back_as_lists_and_dicts() -> None:
    from types import MappingProxyType

    assert codec.loads(codec.dumps({"t": (1, 2), "m": MappingProxyType({"k": b"v"})})) == {
        "t": [1, 2],
        "m": {"k": b"v"},
    }


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        codec.dumps({"x": object()})


def test_none_stays_sql_null() -> None:
    assert codec.dumps_or_none(None) is None
    assert codec.loads_or_none(None) is None
    assert codec.loads_or_none(codec.dumps_or_none({})) == {}


def test_node_run_round_trips() -> None:
    run = NodeRun(
        execution_id="x",
        node_id="n",
        status=NodeStatus.WAITING,
        attempt=2,
        inputs={"value": b"in"},
        outputs={"approved": {"a": 1}},
        error=NodeError(message="boom", kind="timeout", details={"after_ms": 5}),
        started_at=1.5,
        finished_at=2.5,
        wait={"kind": "approval", "message": "ok?"},
        decision=ApprovalDecision(approved=True, by="bob", comment="fine", at=3.0),
    )
    assert codec.node_run_from_dict(codec.loads(codec.dumps(codec.node_run_to_dict(run)))) == run


def test_event_round_trips() -> None:
    event = Event(
        execution_id="x",
        seq=4,
        type=EventType.NODE_FINISHED,
        timestamp=12.25,
        workflow_id="wf",
        node_id="n",
        data={"outputs": {"body": b"\x00"}},
    )
    assert codec.event_from_dict(codec.loads(codec.dumps(codec.event_to_dict(event)))) == event


def test_execution_round_trips() -> None:
    execution = Execution(
        id="x",
        workflow_id="wf",
        workflow_version=3,
        status=ExecutionStatus.FAILED,
        mode=ExecutionMode.SIMULATE,
        inputs={"url": "http://x", "raw": b"1"},
        outputs={"end": {"value": 1}},
        error=NodeError(message="failed"),
        created_at=1.0,
        started_at=2.0,
        finished_at=3.0,
        parent_id="p",
        trigger="webhook",
        attempt=2,
    )
    text = codec.dumps(codec.execution_to_dict(execution))
    assert codec.execution_from_dict(codec.loads(text)) == execution


def test_non_string_keys_are_written_as_strings() -> None:
    assert codec.loads(codec.dumps({1: "a", "b": {2: b"c"}})) == {"1": "a", "b": {"2": b"c"}}
