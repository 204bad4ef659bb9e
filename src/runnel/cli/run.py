"""``runnel run``: one execution in this process, on the in-memory checkpoint store."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runnel.cli.errors import UsageProblem
from runnel.cli.loading import load_workflow
from runnel.engine.executor import Executor
from runnel.engine.ports import EventSink
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import ExecutionResult, ResumeState, RunRequest
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
    "RunOptions",
    "allowed_hosts_from_env",
    "check_decisions",
    "execute",
    "summarize",
    "waiting_nodes",
]

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


def check_decisions(workflow: Workflow, decisions: Mapping[str, bool]) -> None:
    """Every ``--approve``/``--reject`` must name a node of ``workflow``."""
    known = {node.id for node in workflow.nodes}
    unknown = sorted(node_id for node_id in decisions if node_id not in known)
    if unknown:
        raise UsageProblem(
            "--approve/--reject name no node of the workflow: "
            + ", ".join(repr(node_id) for node_id in unknown),
            [f"nodes: {', '.join(sorted(known))}"],
        )


async def execute(
    workflow: Workflow, registry: NodeRegistry, options: RunOptions, events: EventSink
) -> ExecutionResult:
    """Run ``workflow`` to its end, resuming past every approval decided in ``options``."""
    services = NodeServices(
        http=HttpPolicy(allowed_hosts=options.allowed_hosts),
        load_workflow=_folder_loader(options.workflows_dir),
    )
    executor = Executor(registry, MemoryCheckpointStore(), events, services=services)
    mode = ExecutionMode.SIMULATE if options.simulate else ExecutionMode.EXECUTE
    request = RunRequest(str(uuid.uuid4()), workflow, dict(options.inputs), mode=mode)
    result = await executor.run(request)
    while result.status is ExecutionStatus.WAITING:
        decided = _decide(result.node_runs, options.decisions)
        if decided is None:
            break
        resume = ResumeState(
            node_runs=decided, next_seq=result.next_seq, started_at=result.started_at
        )
        result = await executor.run(dataclasses.replace(request, resume=resume))
    return result


def _decide(
    node_runs: Mapping[str, NodeRun], decisions: Mapping[str, bool]
) -> dict[str, NodeRun] | None:
    """The node runs with a decision on every waiting approval decided in advance."""
    updated = dict(node_runs)
    changed = False
    for node_id in waiting_nodes(node_runs):
        run = node_runs[node_id]
        if node_id in decisions and run.decision is None:
            decision = ApprovalDecision(approved=decisions[node_id], by="cli", at=time.time())
            updated[node_id] = dataclasses.replace(run, decision=decision)
            changed = True
    return updated if changed else None


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
        for candidate in sorted(folder.glob("*.json")):
            try:
                workflow = load_workflow(candidate)
            except UsageProblem:
                continue
            if workflow_id in (workflow.id, candidate.stem):
                return workflow
        return None

    return load
