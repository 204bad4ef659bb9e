"""The pure parts: event rendering, settings, error messages, webhook answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runnel.api.common.problems import (
    ApiProblem,
    describe_validation_errors,
    problem_from_exception,
)
from runnel.api.flowengine.events import encode_event, lagged_message, render_event, rfc3339
from runnel.api.flowengine.socket import EventFilter, stream_events
from runnel.api.flowengine.webhooks import webhook_answer
from runnel.bus import EncodeCache, MemoryBus
from runnel.cli.serve import masked_url
from runnel.model.events import Event, EventType
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail, Unauthorized
from runnel.settings import BindAddress, Settings, is_loopback_host, parse_bind

T = 1705314600.005  # 2024-01-15T10:30:00.005Z


def event(kind: EventType, data: dict[str, Any], node_id: str | None = "n1") -> Event:
    return Event("ex1", 7, kind, T, "wf1", node_id, data)


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(T) == "2024-01-15T10:30:00.005Z"
    assert rfc3339(1705314600) == "2024-01-15T10:30:00.000Z"
    assert rfc3339(1705314600.9999) == "2024-01-15T10:30:00.999Z"


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            EventType.EXECUTION_STARTED,
            {"workflow_id": "wf1", "attempt": 1},
            {"type": "WorkflowStarted", "attempt": 1},
        ),
        (
            EventType.NODE_STARTED,
            {"node_type": "http.request", "attempt": 1},
            {"type": "NodeStarted", "node_id": "n1", "node_type": "http.request", "attempt": 1},
        ),
        (
            EventType.NODE_FINISHED,
            {"status": "succeeded", "outputs": {"status": 200, "body": "ok"}, "duration_ms": 233.6},
            {
                "type": "NodeCompleted",
                "node_id": "n1",
                "outputs": {
                    "status": {"type": "Number", "value": 200},
                    "body": {"type": "String", "value": "ok"},
                },
                "duration_ms": 234,
            },
        ),
        (
            EventType.NODE_FINISHED,
            {"status": "skipped"},
            {"type": "NodeSkipped", "node_id": "n1", "status": "skipped"},
        ),
        (EventType.NODE_FINISHED, {"status": "failed", "outputs": {"error": {}}}, None),
        (
            EventType.NODE_FAILED,
            {"error": {"message": "boom", "kind": "node"}, "node_type": "x", "attempt": 2},
            {
                "type": "NodeFailed",
                "node_id": "n1",
                "error": "boom",
                "node_type": "x",
                "attempt": 2,
                "will_retry": False,
            },
        ),
        (
            EventType.NODE_EVENT,
            {"kind": "info", "message": "GET https://x"},
            {
                "type": "NodeEvent",
                "node_id": "n1",
                "event": {"event_type": "Info", "message": "GET https://x"},
            },
        ),
        (
            EventType.NODE_EVENT,
            {"kind": "log", "message": "careful", "level": "warning"},
            {
                "type": "NodeEvent",
                "node_id": "n1",
                "event": {"event_type": "Warning", "message": "careful"},
            },
        ),
        (
            EventType.NODE_EVENT,
            {"kind": "progress", "percent": 50, "message": ""},
            {
                "type": "NodeEvent",
                "node_id": "n1",
                "event": {"event_type": "Progress", "percent": 50},
            },
        ),
        (
            EventType.NODE_EVENT,
            {"kind": "data", "port": "rows", "value": [1]},
            {
                "type": "NodeEvent",
                "node_id": "n1",
                "event": {
                    "event_type": "Data",
                    "port": "rows",
                    "value": {"type": "Array", "value": [{"type": "Number", "value": 1}]},
                },
            },
        ),
        (
            EventType.DEBUG_POPUP,
            {"title": "T", "content": {"a": 1}},
            {
                "type": "NodeEvent",
                "node_id": "n1",
                "event": {"event_type": "Info", "message": 'T: {"a":1}'},
            },
        ),
        (
            EventType.EXECUTION_FINISHED,
            {"status": "failed", "duration_ms": 12.2, "error": {"message": "boom"}},
            {
                "type": "WorkflowCompleted",
                "success": False,
                "duration_ms": 12,
                "status": "failed",
                "error": "boom",
            },
        ),
        (EventType.EDGE_TRAVERSED, {"edge_id": "e"}, None),
    ],
)
def test_render_event(
    kind: EventType, data: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    node_id = None if kind.value.startswith("execution") else "n1"
    rendered = render_event(event(kind, data, node_id))
    if expected is None:
        assert rendered is None
        return
    assert rendered == {
        **expected,
        "execution_id": "ex1",
        "workflow_id": "wf1",
        "seq": 7,
        "timestamp": "2024-01-15T10:30:00.005Z",
    }


def test_each_event_is_encoded_once_per_format() -> None:
    cache = EncodeCache()
    one = event(EventType.NODE_EVENT, {"kind": "info", "message": "x"})
    first = encode_event(one, cache)
    assert encode_event(one, cache) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert '"type":"Lagged","missed":3' in lagged_message(3, frozenset({"b", "a"}))


def test_webhook_answer() -> None:
    assert webhook_answer({"end": {"value": {"ok": True}}}) == {"ok": True}
    assert webhook_answer({"end": {"value": b"\x00"}}) == "AA=="
    assert webhook_answer({"end": {"status": 200}}) == {"end": {"status": 200}}
    assert webhook_answer({"a": {"value": 1}, "b": {"value": 2}}) == {
        "a": {"value": 1},
        "b": {"value": 2},
    }
    assert webhook_answer(None) == {}


def test_service_errors_map_to_statuses() -> None:
    assert problem_from_exception(NotFound("workflow", "x")).status_code == 404
    assert problem_from_exception(Conflict("taken")).status_code == 409
    unauthorized = problem_from_exception(Unauthorized("no"))
    assert unauthorized.status_code == 401 and unauthorized.headers == {
        "WWW-Authenticate": "Bearer"
    }
    invalid = problem_from_exception(
        InvalidInput("invalid workflow", [ProblemDetail("unknown", "node 'a'", "unknown_type")])
    )
    assert invalid.status_code == 400
    assert invalid.extra == {
        "problems": [{"message": "unknown", "where": "node 'a'", "code": "unknown_type"}]
    }
    assert problem_from_exception(RuntimeError("bug")).status_code == 500
    same = ApiProblem(418, "teapot")
    assert problem_from_exception(same) is same


def test_validation_errors_name_the_field() -> None:
    assert (
        describe_validation_errors(
            [{"loc": ("body", "inputs"), "msg": "Input should be a valid dictionary", "type": "x"}]
        )
        == "Invalid request: inputs: Input should be a valid dictionary"
    )
    assert (
        describe_validation_errors([{"loc": ("query", "limit"), "msg": "too small", "type": "x"}])
        == "Invalid request: query parameter 'limit': too small"
    )
    many = [{"loc": ("body", f"f{i}"), "msg": "bad", "type": "x"} for i in range(7)]
    assert describe_validation_errors(many).endswith("(and 2 more)")


def test_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIND_ADDRESS", "127.0.0.1:8080")
    monkeypatch.setenv("RUNNEL_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RUNNEL_HTTP_ALLOWED_HOSTS", "127.0.0.1, LocalHost,")
    monkeypatch.setenv("RUNNEL_LOG", "DEBUG")
    settings = Settings()
    assert settings.bind == BindAddress("127.0.0.1", 8080)
    assert settings.http_allowed_hosts == frozenset({"127.0.0.1", "localhost"})
    assert settings.log == "debug"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'd' / 'runnel.db'}"
    assert settings.platform_config().data_dir == tmp_path / "d"
    # A .env file in the working directory is read too (the environment wins).
    (tmp_path / ".env").write_text("RUNNEL_MAX_BODY_BYTES=1234\nRUNNEL_LOG=error\n")
    from_file = Settings()
    assert from_file.max_body_bytes == 1234 and from_file.log == "debug"
    monkeypatch.setenv("RUNNEL_LOG", "loud")
    with pytest.raises(ValueError, match="unknown log level"):
        Settings()


def test_bind_addresses() -> None:
    assert parse_bind("0.0.0.0:3000") == BindAddress("0.0.0.0", 3000)
    assert parse_bind("[::1]:80") == BindAddress("::1", 80)
    assert parse_bind(":9000") == BindAddress("0.0.0.0", 9000)
    assert parse_bind("[::1]:80").url() == "http://[::1]:80"
    assert parse_bind("0.0.0.0:1").url() == "http://127.0.0.1:1"
    for bad in ("localhost", "host:port", "1.2.3.4:70000", "::1:80", "[::1]80"):
        with pytest.raises(ValueError, match="bind address"):
            parse_bind(bad)
    assert is_loopback_host("127.0.0.5") and is_loopback_host("::1")
    assert is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("example.com")


def test_masked_url() -> None:
    assert masked_url("postgresql://u:secret@db/x") == "postgresql://u:***@db/x"
    assert masked_url("sqlite:////tmp/runnel.db") == "sqlite:////tmp/runnel.db"


def test_serve_refuses_bad_settings(cli: Any, tmp_path: Path) -> None:
    bad_bind = cli("serve", "--bind", "nowhere", "--data-dir", str(tmp_path))
    assert bad_bind.exit_code == 2 and "bind address" in bad_bind.stderr
    public = cli("serve", "--no-auth", "--bind", "0.0.0.0:3999", "--data-dir", str(tmp_path))
    assert public.exit_code == 2 and "--no-auth refuses to listen on 0.0.0.0:3999" in public.stderr
    bad_level = cli("serve", "--data-dir", str(tmp_path), env={"RUNNEL_LOG": "loud"})
    assert bad_level.exit_code == 2 and "log" in bad_level.stderr


class _FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))


async def test_replay_then_live_has_no_gap_and_no_duplicate() -> None:
    """Events 1..3 are stored; 2..5 reach the live subscription (it subscribed before the
    store was read): each is sent once, in order, then a lag is reported as it happened."""
    bus = MemoryBus()
    subscription = bus.subscribe(execution_id="ex1", max_queue=4)
    stored = [event(EventType.NODE_EVENT, {"kind": "info", "message": str(s)}) for s in range(3)]
    stored = [dataclasses.replace(e, seq=i + 1) for i, e in enumerate(stored)]
    for seq in range(2, 6):
        bus.publish(dataclasses.replace(stored[0], seq=seq, data={"kind": "info"}))
    for seq in range(6, 9):  # the queue (4) is full: counted, not queued
        bus.publish(dataclasses.replace(stored[0], seq=seq))
    socket = _FakeSocket()
    wanted = EventFilter(execution_id="ex1", workflow_id=None, after_seq=0)
    sender = asyncio.ensure_future(
        stream_events(socket, subscription, wanted, stored, EncodeCache())  # type: ignore[arg-type]
    )
    await bus.close()
    await sender
    assert [m.get("seq") for m in socket.sent] == [1, 2, 3, 4, 5, None]
    assert socket.sent[-1]["type"] == "Lagged" and socket.sent[-1]["missed"] == 3
