"""Core Engine jobs on a real SQLite platform with its embedded worker: Flowork workflow
data in, seed-002 job messages out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flowork_keys import Wallet, preset_signature
from runnel.bus import Bus, Subscription
from runnel.model.events import Event
from runnel.model.execution import ExecutionMode, ExecutionStatus
from runnel.platform import Platform, PlatformConfig
from runnel.services.core_engine.authority import StaticAuthority
from runnel.services.core_engine.jobs import JobDeps, JobService
from runnel.services.core_engine.types import EngineUser, Outgoing
from runnel.services.errors import Conflict, Forbidden, InvalidInput, NotFound

Message = dict[str, Any]


@dataclass
class Jobs:
    """A job service over a started platform, with every message it emitted."""

    platform: Platform
    service: JobService
    starter: Wallet
    owner: Wallet
    other: Wallet
    settings: dict[str, dict[str, Any]]
    sent: list[Outgoing] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, outgoing: Outgoing) -> None:
        self.sent.append(outgoing)
        self.changed.set()

    def user(self, wallet: Wallet | None = None) -> EngineUser:
        return EngineUser((wallet or self.starter).lower)

    async def ask(self, payload: Mapping[str, Any], wallet: Wallet | None = None) -> list[Message]:
        return await self.service.handle(self.user(wallet), payload)

    async def execute(self, workflow_data: Any, wallet: Wallet | None = None, **fields: Any) -> str:
        payload = {"type": "execute_workflow", "workflow_data": workflow_data, **fields}
        answers = await self.ask(payload, wallet)
        assert len(answers) == 1
        answer = answers[0]
        assert answer["type"] == "execute_workflow_response"
        assert answer["status"] == "Workflow execution started"
        job_id: str = answer["job_id"]
        return job_id

    def messages(self, job_id: str | None = None, kind: str | None = None) -> list[Message]:
        found = []
        for outgoing in self.sent:
            message = dict(outgoing.message)
            if kind is not None and message["type"] != kind:
                continue
            if job_id is not None and _job_of(message) != job_id:
                continue
            found.append(message)
        return found

    async def wait_for(self, predicate: Callable[[Message], bool]) -> Message:
        """The first message that matches, waiting for it as messages come in."""
        seen = 0
        async with asyncio.timeout(20):
            while True:
                self.changed.clear()
                for outgoing in self.sent[seen:]:
                    if predicate(dict(outgoing.message)):
                        return dict(outgoing.message)
                seen = len(self.sent)
                await self.changed.wait()

    async def final_status(self, job_id: str) -> Message:
        ended = ("SUCCEEDED", "FAILED", "STOPPED")
        message = await self.wait_for(
            lambda m: (
                m["type"] == "workflow_status_update"
                and m["job_id"] == job_id
                and m["status_data"]["status"] in ended
            )
        )
        data: Message = message["status_data"]
        return data

    async def status(self, job_id: str, status: str) -> Message:
        return await self.wait_for(
            lambda m: (
                m["type"] == "workflow_status_update"
                and m["job_id"] == job_id
                and m["status_data"]["status"] == status
            )
        )


def _job_of(message: Mapping[str, Any]) -> str | None:
    value = message.get("job_id", message.get("workflow_context_id"))
    return value if isinstance(value, str) else None


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[Jobs]:
    config = PlatformConfig(data_dir=tmp_path, http_allowed_hosts=frozenset({"127.0.0.1"}))
    platform = await Platform.open(config)
    await platform.start()
    starter, owner, other = Wallet(), Wallet(), Wallet()
    settings: dict[str, dict[str, Any]] = {}

    async def lookup(address: str) -> Mapping[str, Any]:
        return settings.get(address, {})

    deps = JobDeps(
        workflows=platform.workflows,
        executions=platform.executions,
        bus=platform.bus,
        presets=platform.flowork.presets,
        variables=platform.flowork.variables,
        settings=lookup,
        engine_id="engine-1",
        authority=StaticAuthority([starter.lower, other.lower], owner=owner.lower),
    )
    holder: list[Jobs] = []
    service = JobService(deps, lambda outgoing: holder[0].emit(outgoing))
    harness = Jobs(platform, service, starter, owner, other, settings)
    holder.append(harness)
    await service.start()
    try:
        yield harness
    finally:
        await service.stop()
        await platform.stop()


# -- workflow data ------------------------------------------------------------------------


def node(node_id: str, module_id: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id.capitalize(),
        "x": 0,
        "y": 0,
        "module_id": module_id,
        "config_values": config,
    }


def link(
    connection_id: str, source: str, target: str, port: str | None = "output"
) -> dict[str, Any]:
    return {
        "id": connection_id,
        "source": source,
        "target": target,
        "source_port_name": port,
        "target_port_name": None,
        "type": "data",
        "animated": True,
    }


def graph(*items: dict[str, Any], loop: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "nodes": [item for item in items if "module_id" in item],
        "connections": [item for item in items if "source" in item],
    }
    if loop is not None:
        data["global_loop_config"] = loop
    return data


def popup_flow(data: Any = None) -> dict[str, Any]:
    """static data -> debug popup."""
    return graph(
        node("source", "static_data_provider_module", data=data or {"n": 1}),
        node("show", "debug_popup_module", title="Shown"),
        link("c1", "source", "show"),
    )


def delay_flow(ms: int = 300) -> dict[str, Any]:
    """delay -> delay -> popup."""
    return graph(
        node("first", "time.delay", delay_ms=ms),
        node("second", "time.delay", delay_ms=ms),
        node("show", "debug_popup_module"),
        link("c1", "first", "second"),
        link("c2", "second", "show"),
    )


def failing_flow() -> dict[str, Any]:
    """A start node whose expression reads a key its input does not have."""
    return graph(node("broken", "debug_popup_module", title="{{ input.value.nope.x }}"))


# -- execute ------------------------------------------------------------------------------


async def test_a_job_runs_end_to_end_and_its_audience_sees_it(jobs: Jobs) -> None:
    await jobs.platform.flowork.variables.put(jobs.starter.lower, "NAME", {"value": "Ada"})
    data = popup_flow({"greeting": "hi {{vars.NAME}}"})
    job_id = await jobs.execute(data, preset_name="Greeter", initial_payload={"k": 1})
    final = await jobs.final_status(job_id)
    assert final["status"] == "SUCCEEDED"
    assert final["preset_name"] == "Greeter"
    assert final["result"] == {"show": {"value": {"greeting": "hi Ada"}}}
    assert final["start_time"].endswith("Z") and final["end_time"].endswith("Z")

    kinds = [m["type"] for m in jobs.messages(job_id)]
    assert kinds[0] == "workflow_status_update"
    assert jobs.messages(job_id, "workflow_status_update")[0]["status_data"]["status"] == (
        "RUNNING"
    )
    metrics = jobs.messages(job_id, "NODE_EXECUTION_METRIC")
    assert [(m["node_id"], m["status"]) for m in metrics] == [
        ("source", "RUNNING"),
        ("source", "SUCCESS"),
        ("show", "RUNNING"),
        ("show", "SUCCESS"),
    ]
    end = metrics[3]
    assert end["node_name"] == "Show" and end["module_id"] == "debug_popup_module"
    assert end["preset_name"] == "Greeter" and end["workflow_context_id"] == job_id
    assert end["execution_time_ms"] >= 0
    assert end["payload_size_in_bytes"] == len('{"greeting":"hi Ada"}')
    assert end["payload_size_out_bytes"] == len('{"value":{"greeting":"hi Ada"}}')
    assert jobs.messages(job_id, "CONNECTION_STATUS_UPDATE") == [
        {
            "type": "CONNECTION_STATUS_UPDATE",
            "workflow_context_id": job_id,
            "connection_id": "c1",
            "status": "ACTIVE",
        }
    ]
    (popup,) = jobs.messages(job_id, "SHOW_DEBUG_POPUP")
    assert popup["title"] == "Shown" and popup["content"] == {"greeting": "hi Ada"}
    audience = frozenset({jobs.starter.lower, jobs.owner.lower})
    assert {outgoing.audience for outgoing in jobs.sent} == {audience}

    # The workflow is stored under the starter, once for an unchanged graph.
    workflow_id = f"flowork:{jobs.starter.lower}:preset:Greeter"
    stored = await jobs.platform.workflows.get(workflow_id)
    assert stored.owner == jobs.starter.lower and stored.version == 1
    again = await jobs.execute(data, preset_name="Greeter")
    assert (await jobs.final_status(again))["status"] == "SUCCEEDED"
    assert (await jobs.platform.workflows.get(workflow_id)).version == 1
    changed = await jobs.execute(popup_flow({"other": 2}), preset_name="Greeter")
    assert (await jobs.final_status(changed))["status"] == "SUCCEEDED"
    assert (await jobs.platform.workflows.get(workflow_id)).version == 2


class TinyQueueBus:
    """The platform's bus, but every subscriber lags after one unread event."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner

    def publish(self, event: Event) -> None:
        self.inner.publish(event)

    def subscribe(
        self, *, execution_id: str | None = None, workflow_id: str | None = None, max_queue: int = 1
    ) -> Subscription:
        return self.inner.subscribe(execution_id=execution_id, workflow_id=workflow_id, max_queue=1)

    async def close(self) -> None:
        await self.inner.close()


async def test_a_job_that_falls_behind_catches_up_from_the_store(jobs: Jobs) -> None:
    deps = dataclasses.replace(jobs.service.deps, bus=TinyQueueBus(jobs.platform.bus))
    slow = JobService(deps, jobs.emit)
    await slow.start()
    try:
        items: list[dict[str, Any]] = [node("n0", "static_data_provider_module", data=1)]
        for i in range(1, 8):
            items += [node(f"n{i}", "debug_popup_module"), link(f"c{i}", f"n{i - 1}", f"n{i}")]
        answers = await slow.handle(
            jobs.user(), {"type": "execute_workflow", "workflow_data": graph(*items)}
        )
        job_id = answers[0]["job_id"]
        assert (await jobs.final_status(job_id))["status"] == "SUCCEEDED"
    finally:
        await slow.stop()
    metrics = [(m["node_id"], m["status"]) for m in jobs.messages(job_id, "NODE_EXECUTION_METRIC")]
    assert sorted(metrics) == sorted(
        (f"n{i}", status) for i in range(8) for status in ("RUNNING", "SUCCESS")
    )
    connections = [m["connection_id"] for m in jobs.messages(job_id, "CONNECTION_STATUS_UPDATE")]
    assert sorted(connections) == [f"c{i}" for i in range(1, 8)]
    assert len(jobs.messages(job_id, "SHOW_DEBUG_POPUP")) == 7
    statuses = [m["status_data"]["status"] for m in jobs.messages(job_id, "workflow_status_update")]
    assert statuses == ["RUNNING", "SUCCEEDED"]


async def test_a_log_node_and_a_failure_become_log_messages(jobs: Jobs) -> None:
    data = graph(
        node("say", "debug.log", message="hello", level="warning"),
        node("broken", "debug_popup_module", title="{{ input.value.nope.x }}"),
        link("c1", "say", "broken"),
    )
    job_id = await jobs.execute(data, job_id="job-log")
    assert job_id == "job-log"
    final = await jobs.final_status(job_id)
    assert final["status"] == "FAILED"
    assert final["active_node_id"] == "broken" and "nope" in final["error"]
    logs = jobs.messages(job_id, "log")
    assert {"source": "Node: Say", "message": "hello", "level": "WARN"}.items() <= logs[0].items()
    errors = [m for m in logs if m["level"] == "ERROR"]
    assert errors[0]["source"] == "Node: Broken"
    metrics = jobs.messages(job_id, "NODE_EXECUTION_METRIC")
    assert (metrics[-1]["node_id"], metrics[-1]["status"]) == ("broken", "ERROR")


async def test_initial_payload_reaches_the_start_nodes(jobs: Jobs) -> None:
    data = graph(node("show", "debug_popup_module"))
    job_id = await jobs.execute(data, initial_payload={"a": 1})
    assert (await jobs.final_status(job_id))["status"] == "SUCCEEDED"
    plain = await jobs.execute(data, initial_payload="text")
    assert (await jobs.final_status(plain))["status"] == "SUCCEEDED"
    contents = [m["content"] for m in jobs.messages(kind="SHOW_DEBUG_POPUP")]
    assert contents == [{"a": 1}, "text"]


# -- simulate -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def loopback_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server on 127.0.0.1 that records every request it receives."""
    received: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hit", received
    finally:
        server.close()
        await server.wait_closed()


async def test_simulate_touches_nothing_and_execute_does(jobs: Jobs) -> None:
    async with loopback_server() as (url, received):
        data = graph(node("call", "http.request", url=url, method="POST"))
        simulated = await jobs.execute(data, mode="SIMULATE")
        assert (await jobs.final_status(simulated))["status"] == "SUCCEEDED"
        assert received == []
        execution = await jobs.platform.executions.get(simulated)
        assert execution.execution.mode is ExecutionMode.SIMULATE
        # The same graph in EXECUTE mode reaches the server: the check above means something.
        executed = await jobs.execute(data, mode="EXECUTE")
        assert (await jobs.final_status(executed))["status"] == "SUCCEEDED"
        assert len(received) == 1 and received[0].startswith(b"POST /hit")


# -- pause, resume, stop ------------------------------------------------------------------


async def test_pause_and_resume_one_job_while_another_runs(jobs: Jobs) -> None:
    paused = await jobs.execute(delay_flow(), job_id="job-a")
    other = await jobs.execute(delay_flow(), job_id="job-b")
    await jobs.wait_for(
        lambda m: m["type"] == "NODE_EXECUTION_METRIC" and m["workflow_context_id"] == paused
    )
    answer = await jobs.ask({"type": "pause_workflow", "job_id": paused})
    assert answer == [{"type": "pause_workflow_response", "job_id": paused, "status": "PAUSED"}]
    await jobs.status(paused, "PAUSED")
    assert (await jobs.final_status(other))["status"] == "SUCCEEDED"
    # job-a's first delay ended long ago, but its second node never started.
    started = [
        m["node_id"]
        for m in jobs.messages(paused, "NODE_EXECUTION_METRIC")
        if m["status"] == "RUNNING"
    ]
    assert started == ["first"]
    report = await jobs.platform.executions.get(paused)
    assert report.execution.status is ExecutionStatus.PAUSED
    await jobs.ask({"type": "resume_workflow", "job_id": paused})
    assert (await jobs.final_status(paused))["status"] == "SUCCEEDED"
    statuses = [m["status_data"]["status"] for m in jobs.messages(paused, "workflow_status_update")]
    assert statuses == ["RUNNING", "PAUSED", "RUNNING", "SUCCEEDED"]


async def test_stop_one_job_and_not_the_other(jobs: Jobs) -> None:
    stopped = await jobs.execute(delay_flow(), job_id="job-a")
    other = await jobs.execute(delay_flow(), job_id="job-b")
    await jobs.status(stopped, "RUNNING")
    answer = await jobs.ask({"type": "stop_workflow", "job_id": stopped})
    assert answer[0]["status"] == "STOPPED"
    final = await jobs.final_status(stopped)
    assert final["status"] == "STOPPED" and final["error"]
    assert (await jobs.final_status(other))["status"] == "SUCCEEDED"
    assert jobs.messages(stopped, "SHOW_DEBUG_POPUP") == []


async def test_without_a_job_id_the_callers_only_job_is_meant(jobs: Jobs) -> None:
    with pytest.raises(InvalidInput, match="no running job"):
        await jobs.ask({"type": "stop_workflow"})
    first = await jobs.execute(delay_flow())
    await jobs.execute(delay_flow(), wallet=jobs.other)
    await jobs.status(first, "RUNNING")
    # The other user's job is theirs: the caller still has exactly one.
    await jobs.ask({"type": "pause_workflow"})
    await jobs.status(first, "PAUSED")
    second = await jobs.execute(delay_flow())
    with pytest.raises(InvalidInput, match="2 running jobs"):
        await jobs.ask({"type": "resume_workflow"})
    await jobs.ask({"type": "resume_workflow", "job_id": first})
    for job_id in (first, second):
        assert (await jobs.final_status(job_id))["status"] == "SUCCEEDED"


async def test_only_the_starter_or_the_owner_may_act_on_a_job(jobs: Jobs) -> None:
    job_id = await jobs.execute(delay_flow())
    with pytest.raises(Forbidden):
        await jobs.ask({"type": "pause_workflow", "job_id": job_id}, jobs.other)
    with pytest.raises(NotFound):
        await jobs.ask({"type": "pause_workflow", "job_id": "nope"})
    await jobs.ask({"type": "stop_workflow", "job_id": job_id}, jobs.owner)
    assert (await jobs.final_status(job_id))["status"] == "STOPPED"
    with pytest.raises(Conflict, match="not running"):
        await jobs.ask({"type": "resume_workflow", "job_id": job_id})


# -- approvals, history -------------------------------------------------------------------


def approval_flow() -> dict[str, Any]:
    return graph(
        node("source", "static_data_provider_module", data={"amount": 5}),
        node("gate", "approval", message="Pay 5?"),
        node("show", "debug_popup_module"),
        link("c1", "source", "gate"),
        link("c2", "gate", "show", "approved"),
    )


async def test_an_approval_is_requested_and_answered(jobs: Jobs) -> None:
    job_id = await jobs.execute(approval_flow())
    asked = await jobs.wait_for(lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED")
    assert asked == {
        "type": "MANUAL_APPROVAL_REQUESTED",
        "module_id": "gate",
        "message": "Pay 5?",
        "workflow_context_id": job_id,
    }
    approve = {"type": "approval_response", "job_id": job_id, "node_id": "gate"}
    with pytest.raises(InvalidInput, match="decision"):
        await jobs.ask({**approve, "decision": "MAYBE"})
    with pytest.raises(Forbidden):
        await jobs.ask({**approve, "decision": "APPROVED"}, jobs.other)
    answer = await jobs.ask({**approve, "decision": "APPROVED"})
    assert answer[0]["type"] == "approval_recorded" and answer[0]["decision"] == "APPROVED"
    assert (await jobs.final_status(job_id))["status"] == "SUCCEEDED"
    (popup,) = jobs.messages(job_id, "SHOW_DEBUG_POPUP")
    assert popup["content"] == {"amount": 5}

    rejected = await jobs.execute(approval_flow())
    await jobs.wait_for(
        lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED" and m["workflow_context_id"] == rejected
    )
    await jobs.ask(
        {"type": "approval_response", "job_id": rejected, "node_id": "gate", "decision": "REJECTED"}
    )
    assert (await jobs.final_status(rejected))["status"] == "SUCCEEDED"
    assert jobs.messages(rejected, "SHOW_DEBUG_POPUP") == []


async def test_a_job_waiting_across_a_restart_is_followed_again_on_its_approval(
    jobs: Jobs,
) -> None:
    job_id = await jobs.execute(approval_flow(), preset_name="Pay")
    await jobs.wait_for(lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED")
    await jobs.service.stop()  # what a restart forgets
    assert not jobs.service.is_busy
    restarted = JobService(jobs.service.deps, jobs.emit)
    await restarted.start()
    try:
        with pytest.raises(Forbidden):
            await restarted.handle(
                jobs.user(jobs.other),
                {"type": "approval_response", "job_id": job_id, "node_id": "gate"},
            )
        await restarted.handle(
            jobs.user(),
            {
                "type": "approval_response",
                "job_id": job_id,
                "node_id": "gate",
                "decision": "APPROVED",
            },
        )
        final = await jobs.final_status(job_id)
        assert final["status"] == "SUCCEEDED" and final["preset_name"] == "Pay"
        assert len(jobs.messages(job_id, "SHOW_DEBUG_POPUP")) == 1
    finally:
        await restarted.stop()


async def test_a_waiting_job_can_be_stopped_after_a_restart(jobs: Jobs) -> None:
    job_id = await jobs.execute(approval_flow())
    await jobs.wait_for(lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED")
    await jobs.service.stop()
    restarted = JobService(jobs.service.deps, jobs.emit)
    await restarted.start()
    try:
        await restarted.handle(jobs.user(jobs.owner), {"type": "stop_workflow", "job_id": job_id})
        assert (await jobs.final_status(job_id))["status"] == "STOPPED"
    finally:
        await restarted.stop()


async def test_connection_history_for_who_may_see_the_job(jobs: Jobs) -> None:
    job_id = await jobs.execute(popup_flow({"n": 7}))
    await jobs.final_status(job_id)
    ask = {"type": "request_connection_history", "job_id": job_id, "connection_id": "c1"}
    expected = [{**ask, "type": "connection_history_response", "history": [{"n": 7}]}]
    assert await jobs.ask(ask) == expected
    assert await jobs.ask(ask, jobs.owner) == expected
    with pytest.raises(Forbidden):
        await jobs.ask(ask, jobs.other)
    with pytest.raises(NotFound):
        await jobs.ask({**ask, "job_id": "nope"})
    unknown = await jobs.ask({**ask, "connection_id": "c9"})
    assert unknown[0]["history"] == []


# -- the global loop ----------------------------------------------------------------------


async def test_the_global_loop_runs_the_graph_n_times_as_one_job(jobs: Jobs) -> None:
    loop = {
        "isEnabled": True,
        "iterations": 3,
        "isDelayEnabled": True,
        "delayType": "static",
        "delayStatic": 0.05,
    }
    data = popup_flow({"n": 1})
    data["global_loop_config"] = loop
    job_id = await jobs.execute(data)
    final = await jobs.final_status(job_id)
    assert final["status"] == "SUCCEEDED"
    assert len(jobs.messages(job_id, "SHOW_DEBUG_POPUP")) == 3
    statuses = [m["status_data"]["status"] for m in jobs.messages(job_id, "workflow_status_update")]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    for execution_id in (job_id, f"{job_id}~2", f"{job_id}~3"):
        report = await jobs.platform.executions.get(execution_id)
        assert report.execution.status is ExecutionStatus.SUCCEEDED
    history = await jobs.ask(
        {"type": "request_connection_history", "job_id": job_id, "connection_id": "c1"}
    )
    assert history[0]["history"] == [{"n": 1}] * 3


async def test_a_random_delay_and_a_failing_iteration_end_the_loop_early(jobs: Jobs) -> None:
    loop = {
        "isEnabled": True,
        "iterations": 4,
        "isDelayEnabled": True,
        "delayType": "random",
        "delayRandomMin": 0,
        "delayRandomMax": 0.02,
    }
    data = {**failing_flow(), "global_loop_config": loop}
    job_id = await jobs.execute(data)
    assert (await jobs.final_status(job_id))["status"] == "FAILED"
    assert await jobs.platform.store.get_execution(f"{job_id}~2") is None
    ok = await jobs.execute({**popup_flow(), "global_loop_config": loop})
    assert (await jobs.final_status(ok))["status"] == "SUCCEEDED"
    assert len(jobs.messages(ok, "SHOW_DEBUG_POPUP")) == 4


async def test_a_stop_between_iterations_ends_the_loop(jobs: Jobs) -> None:
    loop = {"isEnabled": True, "iterations": 5, "isDelayEnabled": True, "delayStatic": 60}
    data = popup_flow()
    data["global_loop_config"] = loop
    job_id = await jobs.execute(data)
    await jobs.wait_for(lambda m: m["type"] == "log" and "next in" in m["message"])
    await jobs.ask({"type": "pause_workflow", "job_id": job_id})
    await jobs.status(job_id, "PAUSED")
    await jobs.ask({"type": "stop_workflow", "job_id": job_id})
    assert (await jobs.final_status(job_id))["status"] == "STOPPED"
    assert len(jobs.messages(job_id, "SHOW_DEBUG_POPUP")) == 1


# -- the global error workflow ------------------------------------------------------------


async def save_preset(jobs: Jobs, name: str, data: dict[str, Any]) -> None:
    await jobs.platform.flowork.presets.save(
        jobs.starter.lower, name, data, preset_signature(jobs.starter, data), jobs.starter.lower
    )


async def test_the_global_error_workflow_runs_on_failure_in_execute_mode(jobs: Jobs) -> None:
    await save_preset(jobs, "On error", graph(node("report", "debug_popup_module")))
    jobs.settings[jobs.starter.lower] = {
        "global_error_handler_enabled": True,
        "global_error_workflow_preset": "On error",
    }
    job_id = await jobs.execute(failing_flow(), preset_name="Broken")
    assert (await jobs.final_status(job_id))["status"] == "FAILED"
    popup = await jobs.wait_for(lambda m: m["type"] == "SHOW_DEBUG_POPUP")
    content = popup["content"]
    assert content["job_id"] == job_id and content["failed_node_id"] == "broken"
    assert content["preset_name"] == "Broken" and "nope" in content["error"]
    error_job = popup["workflow_context_id"]
    assert (await jobs.final_status(error_job))["preset_name"] == "On error"
    await jobs.service.drain()

    # An error workflow that fails itself starts nothing more.
    await save_preset(jobs, "On error", failing_flow())
    job_id = await jobs.execute(failing_flow())
    await jobs.final_status(job_id)
    await jobs.service.drain()
    ended = {
        m["job_id"]: m["status_data"]
        for m in jobs.messages(kind="workflow_status_update")
        if m["status_data"]["end_time"] is not None
    }
    # Broken, its error workflow, the unsaved job and one error workflow for it.
    assert len(ended) == 4
    assert sorted(data["status"] for data in ended.values()) == ["FAILED"] * 3 + ["SUCCEEDED"]


async def test_no_global_error_workflow_in_simulate_mode(jobs: Jobs) -> None:
    await save_preset(jobs, "On error", graph(node("report", "debug_popup_module")))
    jobs.settings[jobs.starter.lower] = {
        "global_error_handler_enabled": True,
        "global_error_workflow_preset": "On error",
    }
    job_id = await jobs.execute(failing_flow(), mode="SIMULATE")
    assert (await jobs.final_status(job_id))["status"] == "FAILED"
    await jobs.service.drain()
    assert jobs.messages(kind="SHOW_DEBUG_POPUP") == []
    jobs.settings[jobs.starter.lower]["global_error_handler_enabled"] = False
    job_id = await jobs.execute(failing_flow())
    assert (await jobs.final_status(job_id))["status"] == "FAILED"
    await jobs.service.drain()
    assert jobs.messages(kind="SHOW_DEBUG_POPUP") == []


async def test_a_preset_runs_by_name(jobs: Jobs) -> None:
    await save_preset(jobs, "Saved", popup_flow({"saved": True}))
    answers = await jobs.ask({"type": "execute_workflow", "preset_name": "Saved"})
    job_id = answers[0]["job_id"]
    assert (await jobs.final_status(job_id))["status"] == "SUCCEEDED"
    assert jobs.messages(job_id, "SHOW_DEBUG_POPUP")[0]["content"] == {"saved": True}
    with pytest.raises(NotFound):
        await jobs.ask({"type": "execute_workflow", "preset_name": "Missing"})


# -- bad payloads -------------------------------------------------------------------------


def bad_payloads() -> Iterator[tuple[dict[str, Any], str]]:
    yield {}, "workflow_data is required"
    yield {"workflow_data": []}, "must be an object"
    yield {"workflow_data": {"nodes": {}}}, "nodes"
    yield {"workflow_data": {"nodes": [{"id": "a"}]}}, r"nodes\[0\]\.module_id"
    yield {"workflow_data": graph(node("a", "no_such_module"))}, "no_such_module"
    yield {"workflow_data": popup_flow(), "mode": "FAST"}, "mode"
    yield {"workflow_data": popup_flow(), "job_id": "a~2"}, "job_id"
    yield {"workflow_data": popup_flow(), "job_id": 5}, "job_id"
    yield {"workflow_data": popup_flow(), "preset_name": "a/b"}, "name"
    loop = {"isEnabled": True, "iterations": 0}
    yield {"workflow_data": {**popup_flow(), "global_loop_config": loop}}, "iterations"


@pytest.mark.parametrize(("fields", "problem"), list(bad_payloads()))
async def test_a_bad_payload_is_refused_and_stores_nothing(
    jobs: Jobs, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        await jobs.ask({"type": "execute_workflow", **fields})
    assert await jobs.platform.store.list_workflows() == []
    assert (await jobs.platform.executions.list())[1] == 0
    assert jobs.sent == []


async def test_a_job_id_is_used_once(jobs: Jobs) -> None:
    job_id = await jobs.execute(popup_flow(), job_id="once")
    await jobs.final_status(job_id)
    with pytest.raises(Conflict, match="already exists"):
        await jobs.execute(popup_flow(), job_id="once")
    with pytest.raises(InvalidInput, match="Unknown job message"):
        await jobs.ask({"type": "load_preset"})


# -- through the platform's embedded engine ------------------------------------------------


async def test_the_embedded_engine_runs_jobs_with_the_starters_secret_variables(
    tmp_path: Path,
) -> None:
    config = PlatformConfig(data_dir=tmp_path / "data", browse_roots=(tmp_path / "root",))
    platform = await Platform.open(config)
    await platform.start()
    try:
        await platform.accounts.ensure_owner(config.data_dir)
        principal = await platform.accounts.owner_principal()
        assert principal is not None
        owner = Wallet()
        await platform.flowork.bootstrap(principal.user_id, owner.address)
        engine = await platform.start_embedded_engine()
        assert engine is not None
        secret = {"value": "s3cret", "is_secret": True}
        await platform.flowork.variables.put(owner.lower, "TOKEN", secret)
        popups: asyncio.Queue[Outgoing] = asyncio.Queue()
        engine.listen(
            lambda o: popups.put_nowait(o) if o.message["type"] == "SHOW_DEBUG_POPUP" else None
        )
        payload = {"type": "execute_workflow", "workflow_data": popup_flow({"t": "{{vars.TOKEN}}"})}
        (answer,) = await engine.handle(EngineUser(owner.lower), payload)
        assert answer["type"] == "execute_workflow_response", answer
        async with asyncio.timeout(20):
            popup = await popups.get()
        assert popup.message["content"] == {"t": "s3cret"}
        assert popup.audience == frozenset({owner.lower})
        refused = await engine.handle(EngineUser(owner.lower), {"type": "execute_workflow"})
        assert refused[0]["type"] == "error" and "workflow_data" in refused[0]["error"]
    finally:
        await platform.stop()
