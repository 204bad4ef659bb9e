"""``runnel run``: one execution in this process, on the in-memory checkpoint store."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runnel.cli.errors import UsageProblem
from runnel.cli.loading import load_workflow
from runnel.engine.control import ExecutionControl
from runnel.engine.executor import Executor
from runnel.engine.ports import EventSink
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import ExecutionResult, RunRequest
from runnel.engine.services import HttpPolicy, NodeServices
from runnel.model.execution import (
    ApprovalDecision,
    ExecutionMode,
    ExecutionStatus,
    NodeRun,
    NodeStatus,
)
from runnel.model.values import to_json
from runnel.model.workflow import Workflow
from runnel.testing.store import MemoryCheckpointStore

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "APPROVAL_TYPE",
    "RunOptions",
    "allowed_hosts_from_env",
    "approval_nodes",
    "check_decisions",
    "execute",
    "execute_interruptible",
    "find_workflow",
    "summarize",
    "waiting_nodes",
]

#: The node type that waits for a person (``--approve``/``--reject`` decide it).
APPROVAL_TYPE = "human.approval"

#: Comma-separated hosts that ``http.request`` may reach on private or loopback addresses.
ALLOWED_HOSTS_ENV = "RUNNEL_HTTP_ALLOWED_HOSTS"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the command line decided about one run."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    simulate: bool = False
    #: Approval nodes decided in advance: node id -> approved.
    decisions: Mapping[str, bool] = field(default_factory=dict)
    allowed_hosts: frozenset[str] = frozenset()
    #: Where ``flow.subworkflow`` looks for workflows by id (the file's folder).
    workflows_dir: Path | None = None


def allowed_hosts_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The hosts listed in ``RUNNEL_HTTP_ALLOWED_HOSTS`` (comma-separated, any case)."""
    raw = (os.environ if environ is None else environ).get(ALLOWED_HOSTS_ENV, "")
    return frozenset(host.strip().lower() for host in raw.split(",") if host.strip())


def approval_nodes(workflow: Workflow, registry: NodeRegistry) -> list[str]:
    """Ids of the nodes that ask for an approval (``human.approval`` or ``needs_approval``)."""
    return [
        node.id
        for node in workflow.nodes
        if node.needs_approval
        or (node.type in registry and registry.canonical(node.type) == APPROVAL_TYPE)
    ]


def check_decisions(
    workflow: Workflow, registry: NodeRegistry, decisions: Mapping[str, bool]
) -> None:
    """Every ``--approve``/``--reject`` must name a node of ``workflow`` that asks for one."""
    askers = approval_nodes(workflow, registry)
    wrong = [node_id for node_id in decisions if node_id not in askers]
    if wrong:
        raise UsageProblem(
            "--approve/--reject name no approval node of the workflow: "
            + ", ".join(repr(node_id) for node_id in wrong),
            [f"approval nodes: {', '.join(askers) if askers else 'none'}"],
        )


async def execute(
    workflow: Workflow,
    registry: NodeRegistry,
    options: RunOptions,
    events: EventSink,
    control: ExecutionControl | None = None,
) -> ExecutionResult:
    """Run ``workflow`` to its end, resuming past every approval decided in ``options``.

    A decided approval is handled as the server does: the decision is recorded on the
    waiting node in the checkpoint store and the execution resumes from the store's state.
    """
    control = control if control is not None else ExecutionControl()
    services = NodeServices(
        http=HttpPolicy(allowed_hosts=options.allowed_hosts),
        load_workflow=_folder_loader(options.workflows_dir),
    )
    store = MemoryCheckpointStore()
    executor = Executor(registry, store, events, services=services)
    mode = ExecutionMode.SIMULATE if options.simulate else ExecutionMode.EXECUTE
    request = RunRequest(str(uuid.uuid4()), workflow, dict(options.inputs), mode=mode)
    result = await executor.run(request, control)
    while result.status is ExecutionStatus.WAITING:
        decided = [
            store.record_decision(
                request.execution_id,
                node_id,
                ApprovalDecision(approved=options.decisions[node_id], by="cli", at=time.time()),
            )
            for node_id in waiting_nodes(result.node_runs)
            if node_id in options.decisions
        ]
        if not any(decided):
            break
        resume = store.resume_state(request.execution_id)
        result = await executor.run(dataclasses.replace(request, resume=resume), control)
    return result


async def execute_interruptible(
    workflow: Workflow, registry: NodeRegistry, options: RunOptions, events: EventSink
) -> ExecutionResult:
    """``execute``, with Ctrl-C (SIGINT) cancelling the execution instead of killing it.

    The running nodes are cancelled and the run ends ``cancelled`` with its result shown.
    Where signal handlers cannot be installed (not the main thread, Windows) Ctrl-C keeps
    its default behaviour.
    """
    control = ExecutionControl()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, control.cancel, "interrupted (Ctrl-C)")
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False
    try:
        return await execute(workflow, registry, options, events, control)
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def waiting_nodes(node_runs: Mapping[str, NodeRun]) -> list[str]:
    """Ids of the nodes that wait (for an approval or a timer)."""
    return [node_id for node_id, run in node_runs.items() if run.status is NodeStatus.WAITING]


def summarize(workflow: Workflow, result: ExecutionResult) -> dict[str, Any]:
    """The ``--json`` document: plain JSON values, statuses in lower case."""
    nodes: dict[str, Any] = {}
    for node in workflow.nodes:
        run = result.node_runs.get(node.id)
        if run is None:
            nodes[node.id] = {
                "status": NodeStatus.PENDING.value,
                "duration_ms": None,
                "error": None,
                "attempts": 0,
                "outputs": None,
            }
            continue
        nodes[node.id] = {
            "status": run.status.value,
            "duration_ms": _round_ms(run.duration_ms),
            "error": run.error.message if run.error is not None else None,
            "attempts": run.attempt,
            "outputs": to_json(run.outputs) if run.outputs is not None else None,
        }
    return {
        "execution_id": result.execution_id,
        "workflow_id": workflow.id,
        "status": result.status.value,
        "completed_nodes": result.completed_nodes,
        "total_nodes": result.total_nodes,
        "duration_ms": _round_ms(result.duration_ms),
        "outputs": to_json(result.outputs),
        "nodes": nodes,
        "waiting": waiting_nodes(result.node_runs),
        "error": result.error.message if result.error is not None else None,
    }


def _round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _folder_loader(folder: Path | None) -> Callable[[str], Awaitable[Workflow | None]] | None:
    """``NodeServices.load_workflow`` over the JSON files of ``folder`` (by id or file stem)."""
    if folder is None:
        return None

    async def load(workflow_id: str) -> Workflow | None:
        return await asyncio.to_thread(find_workflow, folder, workflow_id)

    return load


def find_workflow(folder: Path, workflow_id: str) -> Workflow | None:
    """The workflow in ``folder`` whose id (or file name without ``.json``) is ``workflow_id``.

    Files that are not Flow Engine workflows are passed over.
    """
    for candidate in sorted(folder.glob("*.json")):
        try:
            workflow = load_workflow(candidate)
        except UsageProblem:
            continue
        if workflow_id in (workflow.id, candidate.stem):
            return workflow
    return None
