"""Every client message of the Core Engine socket (seed 002, plus ``approval_response``)
over a real socket, against the embedded engine of a real ``runnel serve`` and against a
real ``runnel engine`` linked to it: one scenario, run on both.

A ``websockets`` client (``CoreEngineClient``, envelopes signed with eth-account by
``FloworkSigner``) drives settings, drives and listings (inside a root, and refused: ``..``,
an absolute path outside, a symlink leading out), components, presets (and a preset
loaded through a share link), variables (single, random, sequential, secret), jobs
(EXECUTE and SIMULATE, ``initial_payload``, ``preset_name``, ``job_id``), stop, pause and
resume of one job while another runs, approvals, connection history, and checks every
server event it gets (``workflow_status_update``, ``NODE_EXECUTION_METRIC``, ``log``,
``CONNECTION_STATUS_UPDATE``, ``SHOW_DEBUG_POPUP``, ``MANUAL_APPROVAL_REQUESTED``,
``engine_status_update``). Bad envelopes each answer an error and the connection keeps
working. A second key is refused until the engine is shared with it through the gateway,
sees nothing of the first user's jobs, and is refused again once revoked. Last, the same
engine through the gateway's ``/gui-socket`` (Socket.IO): an approval job's events and
answers come back (the plain SUCCEEDED run on the remote engine is
``test_e2e_flowork_remote_engine.py``'s).

An approval answered ``REJECTED`` takes the node's ``rejected`` branch (as Flowork's
manual approval module does): with nothing connected to it the job ends SUCCEEDED without
running the ``approved`` branch; it does not fail."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.flowork_engines import WAIT, EngineStack, EngineTarget, engine_stack_fixture
from flowork_keys import Wallet
from runnel.client.flowork import (
    CoreEngineClient,
    CoreEngineError,
    FloworkSigner,
    GuiSocketClient,
)

pytestmark = pytest.mark.e2e

Message = dict[str, Any]
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    yield from engine_stack_fixture(tmp_path_factory, "flowork-every-message")


# -- workflow data (the Flowork GUI format) --------------------------------------------------


def node(node_id: str, module_id: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id.capitalize(),
        "x": 0,
        "y": 0,
        "module_id": module_id,
        "config_values": config,
    }


def link(connection_id: str, source: str, target: str, port: str = "output") -> dict[str, Any]:
    return {
        "id": connection_id,
        "source": source,
        "target": target,
        "source_port_name": port,
        "target_port_name": None,
        "type": "data",
        "animated": True,
    }


def graph(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": [item for item in items if "module_id" in item],
        "connections": [item for item in items if "source" in item],
    }


def popup_flow(data: Any) -> dict[str, Any]:
    """static data -c1-> popup."""
    return graph(
        node("source", "static_data_provider_module", data=data),
        node("show", "debug_popup_module", title="Shown"),
        link("c1", "source", "show"),
    )


def main_flow() -> dict[str, Any]:
    """A popup of the initial payload (a start node), and static data -c1-> log -c2-> popup."""
    return graph(
        node("input", "debug_popup_module", title="Input"),
        node("source", "static_data_provider_module", data={"n": 7}),
        node("say", "debug.log", message="said", level="warning"),
        node("show", "debug_popup_module", title="Shown"),
        link("c1", "source", "say"),
        link("c2", "say", "show"),
    )


def delay_chain(count: int, ms: int) -> dict[str, Any]:
    """``count`` delays of ``ms`` one after the other (d1 -> d2 ...), then a popup."""
    items = [node(f"d{i}", "time.delay", delay_ms=ms) for i in range(1, count + 1)]
    items.append(node("show", "debug_popup_module"))
    names = [f"d{i}" for i in range(1, count + 1)] + ["show"]
    items += [link(f"c{i}", a, b) for i, (a, b) in enumerate(itertools.pairwise(names))]
    return graph(*items)


def approval_flow() -> dict[str, Any]:
    return graph(
        node("source", "static_data_provider_module", data={"amount": 5}),
        node("gate", "human.approval", message="Pay 5?"),
        node("show", "debug_popup_module"),
        link("c1", "source", "gate"),
        link("c2", "gate", "show", "approved"),
    )


# -- one connection's messages ---------------------------------------------------------------


def job_of(message: Message) -> str | None:
    value = message.get("job_id", message.get("workflow_context_id"))
    return value if isinstance(value, str) else None


class Session:
    """A client (Core Engine socket or GUI Socket.IO): ``ask`` sends a request and takes
    its answer; every other message it receives is kept in ``seen``, in order."""

    def __init__(self, client: CoreEngineClient | GuiSocketClient) -> None:
        self.client = client
        self.seen: list[Message] = []

    async def ask(self, payload: Message, expect: str, timeout: float = 30) -> Message:  # noqa: ASYNC109
        return await self.client.request(payload, expect, timeout)

    async def refused(self, payload: Message) -> str:
        """The error text the engine answers ``payload`` with."""
        try:
            await self.client.request(payload, "__never__", timeout=30)
        except CoreEngineError as refused:
            return str(refused)
        except TimeoutError:
            raise AssertionError(f"no error answered {payload}") from None
        raise AssertionError(f"{payload} was answered, not refused")

    async def wait_for(
        self,
        matches: Callable[[Message], bool],
        what: str,
        timeout: float = WAIT,  # noqa: ASYNC109
    ) -> Message:
        """The first message (received so far or to come) that ``matches``."""
        for message in self.seen:
            if matches(message):
                return message
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.client.next_message(None, timeout=None)
                    self.seen.append(message)
                    if matches(message):
                        return message
        except TimeoutError:
            raise AssertionError(f"no {what} in {timeout} s; last: {self.seen[-8:]}") from None

    async def quiet(self, seconds: float) -> list[Message]:
        """What arrives within ``seconds`` (also kept in ``seen``)."""
        arrived: list[Message] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    arrived.append(await self.client.next_message(None, timeout=None))
        except TimeoutError:
            pass
        self.seen.extend(arrived)
        return arrived

    async def status(self, job_id: str, *statuses: str) -> Message:
        """The first ``workflow_status_update`` of ``job_id`` with one of ``statuses``."""
        return await self.wait_for(
            lambda m: (
                m.get("type") == "workflow_status_update"
                and m.get("job_id") == job_id
                and m["status_data"]["status"] in statuses
            ),
            f"{'/'.join(statuses)} of job {job_id}",
        )

    async def final(self, job_id: str) -> Message:
        """The ``status_data`` of the job's end."""
        data: Message = (await self.status(job_id, *ENDED))["status_data"]
        return data

    async def start(self, payload: Message) -> str:
        answer = await self.ask(
            {"type": "execute_workflow", **payload}, "execute_workflow_response"
        )
        assert answer["status"] == "Workflow execution started", answer
        job_id: str = answer["job_id"]
        if "job_id" in payload:
            assert job_id == payload["job_id"]
        return job_id

    async def run(self, payload: Message) -> tuple[str, Message]:
        job_id = await self.start(payload)
        return job_id, await self.final(job_id)

    def of(self, job_id: str, kind: str | None = None) -> list[Message]:
        return [m for m in self.seen if job_of(m) == job_id and (kind is None or m["type"] == kind)]

    def statuses(self, job_id: str) -> list[str]:
        return [m["status_data"]["status"] for m in self.of(job_id, "workflow_status_update")]

    def metrics(self, job_id: str) -> list[tuple[str, str]]:
        return [(m["node_id"], m["status"]) for m in self.of(job_id, "NODE_EXECUTION_METRIC")]


# -- the scenario ----------------------------------------------------------------------------


@pytest.mark.timeout(400)
@pytest.mark.parametrize("kind", ["embedded", "remote"])
async def test_every_message_on_a_real_engine(
    stack: EngineStack, kind: str, tmp_path: Path
) -> None:
    target = stack.target(kind)
    owner = stack.gateway.owner
    signer = FloworkSigner(owner.account)
    preset = f"Every message {kind}"
    async with (
        CoreEngineClient.connect(target.ws_url, target.engine_id, signer) as core,
        httpx.AsyncClient(base_url=stack.gateway.url, timeout=30) as rest,
    ):
        session = Session(core)
        await settings_messages(session)
        await file_messages(session, target, tmp_path)
        await component_messages(session)
        await preset_messages(session, signer, preset)
        await variable_messages(session)
        await job_messages(session, stack, target, preset)
        await stop_pause_resume(session)
        await approvals(session)
        await engine_status(session, target)
        await bad_envelopes(session, core, signer)
        await second_user(session, target, rest, owner, preset)
        await through_the_gateway(stack, signer, target)
        # Delete a preset last: the share link above reads it.
        deleted = await session.ask(
            {"type": "delete_preset", "name": preset}, "presets_list_response"
        )
        assert {"name": preset} not in deleted["presets"]
        assert (
            "not found"
            in (await session.refused({"type": "delete_preset", "name": preset})).lower()
        )
        assert core.closed is None


async def settings_messages(session: Session) -> None:
    settings = (await session.ask({"type": "request_settings"}, "settings_response"))["settings"]
    assert set(settings) >= {
        "language",
        "webhook_enabled",
        "webhook_port",
        "global_error_handler_enabled",
        "global_error_workflow_preset",
        "notifications_enabled",
        "notifications_duration_seconds",
        "notifications_position",
    }, settings
    saved = await session.ask(
        {
            "type": "save_settings",
            "settings": {"language": "pt-BR", "notifications_duration_seconds": 9},
        },
        "settings_response",
    )
    assert saved["settings"] == {
        **settings,
        "language": "pt-BR",
        "notifications_duration_seconds": 9,
    }
    for bad, problem in (
        ({"webhook_port": 80}, "webhook_port"),
        ({"notifications_position": "middle"}, "notifications_position"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"global_error_workflow_preset": "No such preset"}, "global_error_workflow_preset"),
    ):
        error = await session.refused({"type": "save_settings", "settings": bad})
        assert error.startswith("Invalid settings") and problem in error, error
    assert "settings" in await session.refused({"type": "save_settings", "settings": "en"})
    again = await session.ask({"type": "request_settings"}, "settings_response")
    assert again["settings"] == saved["settings"]


async def file_messages(session: Session, target: EngineTarget, tmp_path: Path) -> None:
    # The engine makes its root when first asked for its drives.
    drives = await session.ask({"type": "request_drives"}, "drives_list_response")
    root = target.browse_root.resolve()
    assert drives["drives"] == [{"name": root.name, "type": "drive", "path": root.as_posix()}]
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "a.txt").write_text("a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("no")
    escape = root / "escape"
    if not escape.is_symlink():
        escape.symlink_to(outside, target_is_directory=True)

    async def listing(path: str) -> Message:
        return await session.ask(
            {"type": "request_directory_list", "path": path}, "directory_list_response"
        )

    top = await listing(root.as_posix())
    assert top["path"] == root.as_posix() and "error" not in top, top
    names = {item["name"]: item["type"] for item in top["items"]}
    assert names["docs"] == "directory", top
    inner = await listing(f"{root.as_posix()}/docs")
    assert inner["items"] == [
        {"name": "a.txt", "type": "file", "path": f"{root.as_posix()}/docs/a.txt"}
    ]
    # Refused: out by "..", an absolute path outside, a symlink leading out (and inside it).
    for path in (
        f"{root.as_posix()}/docs/../..",
        f"{root.as_posix()}/../{outside.name}",
        "/etc",
        outside.as_posix(),
        escape.as_posix(),
        f"{escape.as_posix()}/",
    ):
        refused = await listing(path)
        assert refused["error"].startswith("Access denied"), (path, refused)
        assert "items" not in refused
    assert (await listing("docs"))["error"].startswith("Access denied")
    assert (await listing(f"{root.as_posix()}/missing"))["error"] == "Directory not found"
    assert (await listing(f"{root.as_posix()}/docs/a.txt"))["error"] == "Not a directory"
    assert "path" in await session.refused({"type": "request_directory_list"})


async def component_messages(session: Session) -> None:
    found: dict[str, list[Message]] = {}
    for kind in ("modules", "triggers", "plugins", "tools"):
        answer = await session.ask(
            {"type": "request_components_list", "component_type": kind},
            "components_list_response",
        )
        assert answer["component_type"] == kind
        found[kind] = answer["components"]
    ids = {kind: {c["id"] for c in components} for kind, components in found.items()}
    assert {"debug_popup_module", "static_data_provider_module"} <= ids["modules"], ids
    assert "cron_trigger" in ids["triggers"] and not ids["modules"] & ids["triggers"]
    # runnel has no plug-ins or AI tools: empty lists, not errors.
    assert found["plugins"] == [] and found["tools"] == []
    popup = next(c for c in found["modules"] if c["id"] == "debug_popup_module")
    assert {"id", "name", "version", "description", "type", "properties", "output_ports"} <= set(
        popup
    )
    error = await session.refused({"type": "request_components_list", "component_type": "widgets"})
    assert "component_type" in error


async def preset_messages(session: Session, signer: FloworkSigner, preset: str) -> None:
    flow = popup_flow({"from": "preset"})
    saved = await session.ask(
        {
            "type": "save_preset",
            "name": preset,
            "workflow_data": flow,
            "signature": signer.sign_preset(flow),
        },
        "presets_list_response",
    )
    assert {"name": preset} in saved["presets"]
    forged = FloworkSigner.generate().sign_preset(flow)
    for signature in (forged, signer.sign_preset({"other": "data"})):
        error = await session.refused(
            {"type": "save_preset", "name": preset, "workflow_data": flow, "signature": signature}
        )
        assert "signature" in error.lower(), error
    error = await session.refused({"type": "save_preset", "name": preset, "workflow_data": flow})
    assert "signature" in error
    listed = await session.ask({"type": "request_presets_list"}, "presets_list_response")
    assert {"name": preset} in listed["presets"]
    loaded = await session.ask({"type": "load_preset", "name": preset}, "load_preset_response")
    assert loaded == {"type": "load_preset_response", "name": preset, "workflow_data": flow}
    mine = await session.ask(
        {"type": "load_preset", "name": preset, "owner_id": signer.address},
        "load_preset_response",
    )
    assert mine["workflow_data"] == flow
    assert "not found" in (await session.refused({"type": "load_preset", "name": "Nope"})).lower()
    assert "name" in await session.refused({"type": "load_preset"})
    # A scratch preset: saved, then deleted.
    scratch = f"{preset} scratch"
    await session.ask(
        {
            "type": "save_preset",
            "name": scratch,
            "workflow_data": flow,
            "signature": signer.sign_preset(flow),
        },
        "presets_list_response",
    )
    after = await session.ask({"type": "delete_preset", "name": scratch}, "presets_list_response")
    assert {"name": scratch} not in after["presets"] and {"name": preset} in after["presets"]


async def variable_messages(session: Session) -> None:
    puts: list[tuple[str, Message]] = [
        ("GREETING", {"value": "hello"}),
        ("COLOR", {"mode": "random", "values": ["red", "green"]}),
        ("STEP", {"mode": "sequential", "values": ["one", "two", "three"]}),
        ("TOKEN", {"value": "s3cret", "is_secret": True}),
    ]
    answer: Message = {}
    for name, data in puts:
        answer = await session.ask(
            {"type": "update_variable", "name": name, "data": data}, "variables_response"
        )
    shown = {v["name"]: v for v in answer["variables"]}
    assert shown["GREETING"]["value"] == "hello" and shown["GREETING"]["mode"] == "single"
    assert shown["COLOR"]["mode"] == "random" and shown["COLOR"]["values"] == ["red", "green"]
    assert shown["STEP"]["mode"] == "sequential" and shown["STEP"]["values"] == [
        "one",
        "two",
        "three",
    ]
    # The secret is masked.
    assert shown["TOKEN"]["is_secret"] is True
    assert shown["TOKEN"]["value"] == "" and shown["TOKEN"]["values"] == []
    assert "s3cret" not in json.dumps(answer)
    listed = await session.ask({"type": "request_variables"}, "variables_response")
    assert listed["variables"] == answer["variables"]
    for name, data, problem in (
        ("bad-name", {"value": 1}, "name"),
        ("STEP", {"mode": "sequential", "values": []}, "values"),
        ("STEP", {"mode": "shuffled", "values": [1]}, "mode"),
    ):
        error = await session.refused({"type": "update_variable", "name": name, "data": data})
        assert error.startswith("Invalid variable") and problem in error, error
    assert "data" in await session.refused({"type": "update_variable", "name": "X"})

    # A job reads them: the secret in clear, the random one of its values, the sequential
    # one in turn.
    flow = popup_flow(
        {
            "greeting": "{{vars.GREETING}}",
            "color": "{{vars.COLOR}}",
            "step": "{{vars.STEP}}",
            "token": "{{vars.TOKEN}}",
        }
    )
    seen: list[Message] = []
    for _ in range(2):
        job_id, final = await session.run({"workflow_data": flow})
        assert final["status"] == "SUCCEEDED", final
        (popup,) = session.of(job_id, "SHOW_DEBUG_POPUP")
        seen.append(popup["content"])
    steps = ["one", "two", "three"]
    for content in seen:
        assert content["greeting"] == "hello" and content["token"] == "s3cret"
        assert content["color"] in ("red", "green") and content["step"] in steps
    assert (steps.index(seen[1]["step"]) - steps.index(seen[0]["step"])) % 3 == 1, seen

    left = await session.ask({"type": "delete_variable", "name": "COLOR"}, "variables_response")
    assert "COLOR" not in {v["name"] for v in left["variables"]}
    assert "GREETING" in {v["name"] for v in left["variables"]}
    missing = await session.refused({"type": "delete_variable", "name": "COLOR"})
    assert "not found" in missing.lower()


async def job_messages(
    session: Session, stack: EngineStack, target: EngineTarget, preset: str
) -> None:
    # EXECUTE with a job id, an initial payload and a preset name.
    job_id = f"job-{target.kind}-{uuid.uuid4().hex[:8]}"
    payload = {"order": 42}
    ran, final = await session.run(
        {
            "job_id": job_id,
            "workflow_data": main_flow(),
            "initial_payload": payload,
            "preset_name": preset,
            "mode": "EXECUTE",
        }
    )
    assert ran == job_id
    assert final["status"] == "SUCCEEDED", final
    assert final["preset_name"] == preset
    assert ISO.fullmatch(final["start_time"]) and ISO.fullmatch(final["end_time"])
    assert final["result"]["show"] == {"value": "said"}, final
    assert session.statuses(job_id) == ["RUNNING", "SUCCEEDED"]
    metrics = session.metrics(job_id)
    for node_id in ("input", "source", "say", "show"):
        assert [s for n, s in metrics if n == node_id] == ["RUNNING", "SUCCESS"], metrics
    assert metrics.index(("source", "SUCCESS")) < metrics.index(("say", "RUNNING"))
    assert metrics.index(("say", "SUCCESS")) < metrics.index(("show", "RUNNING"))
    end = next(
        m
        for m in session.of(job_id, "NODE_EXECUTION_METRIC")
        if m["node_id"] == "say" and m["status"] == "SUCCESS"
    )
    assert end["node_name"] == "Say" and end["module_id"] == "debug.log"
    assert end["preset_name"] == preset and end["execution_time_ms"] >= 0
    assert ISO.fullmatch(end["timestamp"]) and end["payload_size_in_bytes"] > 0
    connections = [
        (m["connection_id"], m["status"]) for m in session.of(job_id, "CONNECTION_STATUS_UPDATE")
    ]
    assert sorted(connections) == [("c1", "ACTIVE"), ("c2", "ACTIVE")]
    popups = {m["title"]: m["content"] for m in session.of(job_id, "SHOW_DEBUG_POPUP")}
    assert popups == {"Input": payload, "Shown": "said"}
    logs = session.of(job_id, "log")
    said = [m for m in logs if m["message"] == "said"]
    assert said and said[0]["level"] == "WARN" and said[0]["source"] == "Node: Say", logs
    assert ISO.fullmatch(said[0]["timestamp"])

    # The connection history of that job.
    history = await session.ask(
        {"type": "request_connection_history", "job_id": job_id, "connection_id": "c1"},
        "connection_history_response",
    )
    assert history == {
        "type": "connection_history_response",
        "job_id": job_id,
        "connection_id": "c1",
        "history": [{"n": 7}],
    }
    c2 = await session.ask(
        {"type": "request_connection_history", "job_id": job_id, "connection_id": "c2"},
        "connection_history_response",
    )
    assert c2["history"] == ["said"]
    none = await session.ask(
        {"type": "request_connection_history", "job_id": job_id, "connection_id": "c9"},
        "connection_history_response",
    )
    assert none["history"] == []
    unknown = await session.refused(
        {"type": "request_connection_history", "job_id": "no-such-job", "connection_id": "c1"}
    )
    assert "not found" in unknown.lower()

    # The same job id again: refused; without one: a new id.
    again = await session.refused(
        {"type": "execute_workflow", "job_id": job_id, "workflow_data": main_flow()}
    )
    assert "already exists" in again
    # preset_name alone runs the saved preset.
    by_name, final = await session.run({"preset_name": preset})
    uuid.UUID(by_name)
    assert final["status"] == "SUCCEEDED" and final["preset_name"] == preset
    (popup,) = session.of(by_name, "SHOW_DEBUG_POPUP")
    assert popup["content"] == {"from": "preset"}
    for bad, problem in (
        ({}, "workflow_data"),
        ({"workflow_data": main_flow(), "mode": "FAST"}, "mode"),
        ({"workflow_data": graph(node("a", "no_such_module"))}, "no_such_module"),
    ):
        assert problem in await session.refused({"type": "execute_workflow", **bad})

    # A failing node: FAILED, with the error, an ERROR log and an ERROR metric.
    broken = graph(
        node("source", "static_data_provider_module", data={"n": 1}),
        node("broken", "debug_popup_module", title="{{ input.value.nope.x }}"),
        link("c1", "source", "broken"),
    )
    failed, final = await session.run({"workflow_data": broken})
    assert final["status"] == "FAILED", final
    assert "nope" in final["error"] and final["active_node_id"] == "broken", final
    assert session.statuses(failed) == ["RUNNING", "FAILED"]
    assert session.metrics(failed)[-1] == ("broken", "ERROR")
    errors = [m for m in session.of(failed, "log") if m["level"] == "ERROR"]
    assert errors and errors[0]["source"] == "Node: Broken", session.of(failed, "log")

    # SIMULATE touches nothing; EXECUTE of the same graph does (once).
    path = f"/hit-{target.kind}-{uuid.uuid4().hex[:8]}"
    call = graph(node("call", "http.request", url=stack.loopback.url + path, method="POST"))
    simulated, final = await session.run({"workflow_data": call, "mode": "SIMULATE"})
    assert final["status"] == "SUCCEEDED", final
    assert session.metrics(simulated) == [("call", "RUNNING"), ("call", "SUCCESS")]
    assert stack.loopback.hits(path) == []
    _executed, final = await session.run({"workflow_data": call, "mode": "EXECUTE"})
    assert final["status"] == "SUCCEEDED", final
    assert stack.loopback.hits(path) == [f"POST {path}"]


async def stop_pause_resume(session: Session) -> None:
    # Stop: a long delay ends STOPPED at once, the rest never runs.
    stopped = await session.start({"workflow_data": delay_chain(1, 30_000)})
    await session.wait_for(
        lambda m: job_of(m) == stopped and m["type"] == "NODE_EXECUTION_METRIC",
        "the first node of the stopped job",
    )
    answer = await session.ask(
        {"type": "stop_workflow", "job_id": stopped}, "stop_workflow_response"
    )
    assert answer == {"type": "stop_workflow_response", "job_id": stopped, "status": "STOPPED"}
    final = await session.final(stopped)
    assert final["status"] == "STOPPED" and final["error"], final
    assert session.of(stopped, "SHOW_DEBUG_POPUP") == []
    assert "not running" in await session.refused({"type": "resume_workflow", "job_id": stopped})

    # Pause one job while another keeps running.
    paused = await session.start({"workflow_data": delay_chain(2, 600)})
    other = await session.start({"workflow_data": delay_chain(5, 500)})
    await session.wait_for(
        lambda m: job_of(m) == paused and m["type"] == "NODE_EXECUTION_METRIC",
        "the first node of the paused job",
    )
    answer = await session.ask(
        {"type": "pause_workflow", "job_id": paused}, "pause_workflow_response"
    )
    assert answer == {"type": "pause_workflow_response", "job_id": paused, "status": "PAUSED"}
    paused_at = await session.status(paused, "PAUSED")
    final = await session.final(other)
    assert final["status"] == "SUCCEEDED", final
    after = session.seen[session.seen.index(paused_at) + 1 :]
    progressed = [
        m["node_id"]
        for m in after
        if job_of(m) == other and m["type"] == "NODE_EXECUTION_METRIC" and m["status"] == "SUCCESS"
    ]
    assert len(progressed) >= 2, progressed  # the other job went on while this one was paused
    # Still paused: nothing of it since, its second delay never started.
    assert session.statuses(paused) == ["RUNNING", "PAUSED"]
    assert ("d2", "RUNNING") not in session.metrics(paused)
    await session.quiet(0.5)
    assert session.statuses(paused) == ["RUNNING", "PAUSED"]
    answer = await session.ask(
        {"type": "resume_workflow", "job_id": paused}, "resume_workflow_response"
    )
    assert answer["job_id"] == paused and answer["status"] == "RUNNING", answer
    final = await session.final(paused)
    assert final["status"] == "SUCCEEDED", final
    assert session.statuses(paused) == ["RUNNING", "PAUSED", "RUNNING", "SUCCEEDED"]
    assert session.metrics(paused)[-2:] == [("show", "RUNNING"), ("show", "SUCCESS")]
    assert "job" in (await session.refused({"type": "pause_workflow", "job_id": "no-such"})).lower()


async def approvals(session: Session) -> None:
    approved = await session.start({"workflow_data": approval_flow()})
    asked = await session.wait_for(
        lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED" and job_of(m) == approved,
        "MANUAL_APPROVAL_REQUESTED",
    )
    assert asked == {
        "type": "MANUAL_APPROVAL_REQUESTED",
        "module_id": "gate",
        "message": "Pay 5?",
        "workflow_context_id": approved,
    }
    # Waiting for a person shows RUNNING (the approval message says why).
    assert session.statuses(approved) == ["RUNNING"]
    decide = {"type": "approval_response", "job_id": approved, "node_id": "gate"}
    assert "decision" in await session.refused({**decide, "decision": "MAYBE"})
    recorded = await session.ask({**decide, "decision": "APPROVED"}, "approval_recorded")
    assert recorded == {
        "type": "approval_recorded",
        "job_id": approved,
        "node_id": "gate",
        "decision": "APPROVED",
    }
    final = await session.final(approved)
    assert final["status"] == "SUCCEEDED", final
    (popup,) = session.of(approved, "SHOW_DEBUG_POPUP")
    assert popup["content"] == {"amount": 5}
    assert any("approved" in m["message"] for m in session.of(approved, "log"))

    # REJECTED takes the node's "rejected" branch (nothing is connected to it here): the
    # approved branch never runs and the job ends.
    rejected = await session.start({"workflow_data": approval_flow()})
    await session.wait_for(
        lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED" and job_of(m) == rejected,
        "MANUAL_APPROVAL_REQUESTED",
    )
    recorded = await session.ask(
        {
            "type": "approval_response",
            "job_id": rejected,
            "node_id": "gate",
            "decision": "REJECTED",
        },
        "approval_recorded",
    )
    assert recorded["decision"] == "REJECTED"
    final = await session.final(rejected)
    assert final["status"] == "SUCCEEDED", final
    assert session.of(rejected, "SHOW_DEBUG_POPUP") == []
    assert ("show", "RUNNING") not in session.metrics(rejected)
    assert any("rejected" in m["message"] for m in session.of(rejected, "log"))


async def engine_status(session: Session, target: EngineTarget) -> None:
    """The 10 s tick (``STATUS_INTERVAL_SECONDS``, no setting): the connection has been
    open long enough by now, or gets one within the next interval."""
    status = await session.wait_for(
        lambda m: m["type"] == "engine_status_update", "engine_status_update", timeout=15
    )
    assert status["engineId"] == target.engine_id
    assert isinstance(status["isBusy"], bool)
    assert 0 <= status["cpuPercent"] <= 100 and 0 <= status["memoryPercent"] <= 100


async def bad_envelopes(session: Session, core: CoreEngineClient, signer: FloworkSigner) -> None:
    """Each bad frame answers an error; the same connection then still works."""
    other = FloworkSigner.generate()
    settings = {"type": "request_settings"}
    forged = signer.envelope(settings)
    forged["auth"]["signature"] = other.sign(forged["auth"]["message"])
    stale = signer.envelope(settings)
    stale["auth"]["message"] = "Flowork GUI-to-Engine Authentication: 1000"
    stale["auth"]["signature"] = signer.sign(stale["auth"]["message"])
    replayed = json.dumps(signer.envelope(settings))
    no_payload = signer.envelope(settings)
    del no_payload["payload"]
    padding = "x" * (1024 * 1024 + 10)
    frames: list[tuple[str, str | bytes, str]] = [
        ("no auth", json.dumps({"payload": settings}), "Missing auth"),
        (
            "auth without signature",
            json.dumps({"auth": {"address": signer.address}, "payload": settings}),
            "Missing signature",
        ),
        ("a bad signature", json.dumps(forged), "Invalid signature"),
        ("a stale signed message", json.dumps(stale), ""),
        ("no payload", json.dumps(no_payload), "Missing payload"),
        (
            "an unknown type",
            json.dumps(signer.envelope({"type": "no_such_type"})),
            "Unknown message type",
        ),
        ("no type", json.dumps(signer.envelope({"name": "x"})), "Missing field: type"),
        (
            "a missing field",
            json.dumps(signer.envelope({"type": "load_preset"})),
            "Missing field: name",
        ),
        (
            "a missing field",
            json.dumps(signer.envelope({"type": "delete_variable"})),
            "Missing field: name",
        ),
        ("over 1 MiB", json.dumps(signer.envelope({**settings, "pad": padding})), "too large"),
        ("invalid JSON", '{"auth": {', "not JSON"),
        ("a JSON array", "[1, 2]", "Invalid message"),
        ("binary garbage", b"\xff\xfe\x00", "not JSON"),
    ]
    for what, frame, expected in frames:
        await core.send_raw(frame)
        error = await core.next_message("error", timeout=30)
        assert error["type"] == "error" and expected in error["error"], (what, error)
        answer = await session.ask(settings, "settings_response")
        assert answer["settings"]["language"] == "pt-BR", what
    # A signed message is accepted once: sent again, it is refused.
    await core.send_raw(replayed)
    await core.next_message("settings_response", timeout=30)
    await core.send_raw(replayed)
    error = await core.next_message("error", timeout=30)
    assert error["error"], error
    assert (await session.ask(settings, "settings_response"))["settings"]
    assert core.closed is None


async def second_user(
    session: Session, target: EngineTarget, rest: httpx.AsyncClient, owner: Wallet, preset: str
) -> None:
    guest = Wallet()
    guest_signer = FloworkSigner(guest.account)
    engine_id = target.engine_id
    async with CoreEngineClient.connect(target.ws_url, engine_id, guest_signer) as raw:
        guest_session = Session(raw)
        refused = await guest_session.refused({"type": "request_settings"})
        assert refused == f"User not authorized for engine {engine_id}"

        # Shared through the gateway's REST API: the engine lets them in.
        heard = target.auth_lists_heard()
        shared = await rest.post(
            f"/api/v1/engines/{engine_id}/shares",
            json={"share_with_identifier": guest.address},
            headers=owner.headers(),
        )
        assert shared.status_code == 201, shared.text
        guest_id = shared.json()["shared_with"]["user_id"]
        await asyncio.to_thread(target.wait_auth_list, heard)
        settings = await guest_session.ask({"type": "request_settings"}, "settings_response")
        assert settings["settings"]["language"] == "en"  # their own settings, not the owner's
        presets = await guest_session.ask({"type": "request_presets_list"}, "presets_list_response")
        assert presets["presets"] == []

        # The owner's preset through a share link (made at the gateway).
        created = await rest.post(
            f"/api/v1/workflows/{preset}/shares",
            json={"permission_level": "view-run", "link_name": "for the guest"},
            headers=owner.headers(),
        )
        assert created.status_code == 201, created.text
        token = created.json()["share_token"]
        shared_preset = await guest_session.ask(
            {"type": "load_preset", "name": preset, "owner_id": owner.lower, "share_token": token},
            "load_preset_response",
        )
        assert shared_preset["workflow_data"] == popup_flow({"from": "preset"})
        without = await guest_session.refused(
            {"type": "load_preset", "name": preset, "owner_id": owner.lower}
        )
        assert "share link" in without
        wrong = await guest_session.refused(
            {"type": "load_preset", "name": preset, "owner_id": owner.lower, "share_token": "nope"}
        )
        assert "not found" in wrong.lower()
        # A view-run link also runs the owner's preset by name, as the guest's job.
        shared_job, final = await guest_session.run(
            {"preset_name": preset, "owner_id": owner.lower, "share_token": token}
        )
        assert final["status"] == "SUCCEEDED"
        assert guest_session.of(shared_job, "SHOW_DEBUG_POPUP")[0]["content"] == {"from": "preset"}
        view_only = await rest.post(
            f"/api/v1/workflows/{preset}/shares",
            json={"permission_level": "view", "link_name": "look only"},
            headers=owner.headers(),
        )
        assert view_only.status_code == 201, view_only.text
        refused_run = await guest_session.refused(
            {
                "type": "execute_workflow",
                "preset_name": preset,
                "owner_id": owner.lower,
                "share_token": view_only.json()["share_token"],
            }
        )
        assert refused_run
        assert await guest_session.refused(
            {"type": "execute_workflow", "preset_name": preset, "owner_id": owner.lower}
        )

        # A job of the owner sends nothing to the guest's connection.
        owners_job, final = await session.run({"workflow_data": popup_flow({"private": True})})
        assert final["status"] == "SUCCEEDED"
        await guest_session.quiet(1.0)
        assert [m for m in guest_session.seen if job_of(m) == owners_job] == []
        # The guest's own job: theirs to see (and the engine owner's).
        guests_job, final = await guest_session.run({"workflow_data": popup_flow({"guest": 1})})
        assert final["status"] == "SUCCEEDED"
        assert guest_session.of(guests_job, "SHOW_DEBUG_POPUP")[0]["content"] == {"guest": 1}
        await session.final(guests_job)
        # ... but not theirs to act on: the owner's job is not the guest's.
        history = {
            "type": "request_connection_history",
            "job_id": owners_job,
            "connection_id": "c1",
        }
        assert await guest_session.refused(history)

        # Through the gateway's GUI socket too, while shared.
        async with GuiSocketClient.connect(
            str(rest.base_url).rstrip("/"), guest_signer, engine_id=engine_id
        ) as gui:
            relayed = await gui.request({"type": "request_settings"}, "settings_response")
            assert relayed["settings"]["language"] == "en"

            # Revoked while a job of theirs runs: the gateway refuses them at once; the
            # engine at once too when embedded (it reads the gateway's store on every
            # check), a remote one once it fetched its list again (the gateway tells it to
            # on the revoke); and the rest of that job's events no longer reach them.
            running = await guest_session.start({"workflow_data": delay_chain(1, 4000)})
            gui_session = Session(gui)

            def first_node(m: Message) -> bool:
                return job_of(m) == running and m["type"] == "NODE_EXECUTION_METRIC"

            # Relayed to them while shared, up to the 4 s delay, after which nothing comes.
            await guest_session.wait_for(first_node, "the first node (engine socket)")
            await gui_session.wait_for(first_node, "the first node (gateway)")
            before = len(gui_session.seen)
            heard = target.auth_lists_heard()
            revoked = await rest.delete(
                f"/api/v1/engines/{engine_id}/shares/{guest_id}", headers=owner.headers()
            )
            assert revoked.status_code == 200, revoked.text
            with pytest.raises(CoreEngineError, match="may not use engine"):
                await gui.request({"type": "request_settings"}, "settings_response")
            if target.kind == "embedded":
                refused = await guest_session.refused({"type": "request_settings"})
                assert refused == f"User not authorized for engine {engine_id}"
            await asyncio.to_thread(target.wait_auth_list, heard)
            refused = await guest_session.refused({"type": "request_settings"})
            assert refused == f"User not authorized for engine {engine_id}"
            # The engine owner still sees it end; the revoked guest does not.
            assert (await session.final(running))["status"] == "SUCCEEDED"
            await guest_session.quiet(0.5)
            assert guest_session.statuses(running) == ["RUNNING"], guest_session.of(running)
            assert guest_session.of(running, "SHOW_DEBUG_POPUP") == []
            await gui_session.quiet(0.5)
            late = [m for m in gui_session.seen[before:] if job_of(m) == running]
            assert late == [], late


async def through_the_gateway(
    stack: EngineStack, signer: FloworkSigner, target: EngineTarget
) -> None:
    """The gateway's ``/gui-socket``: an approval job on this engine, its request, answers
    and events relayed both ways (in-process for the embedded engine, over the engine's
    link for the remote one)."""
    async with GuiSocketClient.connect(
        stack.gateway.url, signer, engine_id=target.engine_id
    ) as gui:
        session = Session(gui)
        job_id = await session.start({"workflow_data": approval_flow(), "mode": "EXECUTE"})
        asked = await session.wait_for(
            lambda m: m["type"] == "MANUAL_APPROVAL_REQUESTED" and job_of(m) == job_id,
            "MANUAL_APPROVAL_REQUESTED via the gateway",
        )
        assert asked["module_id"] == "gate"
        recorded = await session.ask(
            {
                "type": "approval_response",
                "job_id": job_id,
                "node_id": "gate",
                "decision": "APPROVED",
            },
            "approval_recorded",
        )
        assert recorded["decision"] == "APPROVED"
        final = await session.final(job_id)
        assert final["status"] == "SUCCEEDED", final
        assert session.statuses(job_id) == ["RUNNING", "SUCCEEDED"]
        assert ("show", "SUCCESS") in session.metrics(job_id)
        assert session.of(job_id, "SHOW_DEBUG_POPUP")[0]["content"] == {"amount": 5}
        assert {m["connection_id"] for m in session.of(job_id, "CONNECTION_STATUS_UPDATE")} == {
            "c1",
            "c2",
        }
        history = await session.ask(
            {"type": "request_connection_history", "job_id": job_id, "connection_id": "c2"},
            "connection_history_response",
        )
        assert history["history"] == [{"amount": 5}]
