"""Runs one execution of a workflow graph (docs/architecture.md, "Execution semantics").

Usage::

    executor = Executor(registry, checkpoints, events, services)
    result = await executor.run(RunRequest(execution_id, workflow, inputs), control)

The run is event-driven: when a node finishes, its outgoing edges fire or die, the nodes whose
incoming edges are all resolved become ready, and as many of them start as the parallel limit
and the control allow. Each node boundary is one checkpoint: the finished node's result, the
runs of the nodes it started and the events since the last checkpoint commit together, before
the next nodes start.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runnel.engine.control import ControlSignal, ExecutionControl
from runnel.engine.expressions import CompiledValue, ExpressionEngine, ExpressionError
from runnel.engine.filters import FilterError, matches
from runnel.engine.node import NodeContext, NodeOutput, NodeType
from runnel.engine.plan import Plan, plan_for
from runnel.engine.ports import Checkpoint, CheckpointStore, EventSink, ExecutionUpdate
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import ExecutionResult, ResumeState, RunRequest
from runnel.engine.services import NodeServices
from runnel.engine.signals import NodeFailure, Suspend
from runnel.model.events import Event, EventType
from runnel.model.execution import (
    Execution,
    ExecutionMode,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.model.sizes import json_size
from runnel.model.workflow import DEFAULT_PORT, Node, OnError, WorkflowOnErrorKind

__all__ = ["ERROR_PORT", "Executor"]

#: The port a node with ``on_error: continue`` fires with its failure.
ERROR_PORT = "error"

_FIRED = 1
_DEAD = 2


class Executor:
    """Runs executions; one instance serves any number of concurrent runs."""

    def __init__(
        self,
        registry: NodeRegistry,
        checkpoints: CheckpointStore,
        events: EventSink,
        services: NodeServices | None = None,
        expressions: ExpressionEngine | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self.checkpoints = checkpoints
        self.events = events
        self.services = services if services is not None else NodeServices()
        self.expressions = expressions if expressions is not None else ExpressionEngine()
        self.clock = clock
        self.rng = rng
        self.sleep = sleep
        if self.services.run_subworkflow is None:
            self.services.run_subworkflow = self._run_subworkflow

    async def run(
        self, request: RunRequest, control: ExecutionControl | None = None
    ) -> ExecutionResult:
        """Run (or resume) one execution to its end, or until it waits or is cancelled.

        Workflow-level ``RetryWorkflow`` runs the whole graph again, up to its
        ``max_attempts``, while it fails.
        """
        control = control if control is not None else ExecutionControl()
        plan = plan_for(request.workflow, self.registry, self.expressions)
        on_error = request.workflow.settings.on_error
        max_attempts = on_error.max_attempts if on_error.kind is WorkflowOnErrorKind.RETRY else 1
        attempt = request.attempt
        while True:
            result = await _Run(self, plan, request, control, attempt).execute()
            retry = (
                result.status is ExecutionStatus.FAILED
                and attempt < max_attempts
                and not control.cancelled
            )
            if not retry:
                return result
            attempt += 1
            # A fresh run of the whole graph; node attempts keep counting so that every
            # try has its own idempotency key.
            request = RunRequest(
                execution_id=request.execution_id,
                workflow=request.workflow,
                inputs=request.inputs,
                mode=request.mode,
                resume=ResumeState(
                    node_runs={},
                    next_seq=result.next_seq,
                    started_at=result.started_at,
                ),
                variables=request.variables,
                depth=request.depth,
                parent_id=request.parent_id,
                attempt=attempt,
            )
            request = _with_attempt_base(request, result.node_runs)

    async def _run_subworkflow(
        self, workflow_id: str, inputs: Mapping[str, Any], ctx: NodeContext
    ) -> Mapping[str, Mapping[str, Any]]:
        load = self.services.load_workflow
        if load is None:
            raise NodeFailure("sub-workflows need a workflow store; none is configured")
        if ctx.depth + 1 > self.services.max_subworkflow_depth:
            raise NodeFailure(
                f"sub-workflow depth limit ({self.services.max_subworkflow_depth}) reached",
                kind="depth",
            )
        workflow = await load(workflow_id)
        if workflow is None:
            raise NodeFailure(f"workflow {workflow_id!r} not found", kind="not_found")
        child_id = str(uuid.uuid4())
        now = self.clock()
        await self.checkpoints.save(
            Checkpoint(
                execution_id=child_id,
                workflow_id=workflow.id,
                create=Execution(
                    id=child_id,
                    workflow_id=workflow.id,
                    workflow_version=workflow.version,
                    status=ExecutionStatus.RUNNING,
                    mode=ctx.mode,
                    inputs=dict(inputs),
                    created_at=now,
                    parent_id=ctx.execution_id,
                    trigger="subworkflow",
                ),
            )
        )
        child = await self.run(
            RunRequest(
                execution_id=child_id,
                workflow=workflow,
                inputs=inputs,
                mode=ctx.mode,
                variables=ctx.variables,
                depth=ctx.depth + 1,
                parent_id=ctx.execution_id,
            )
        )
        if child.status is not ExecutionStatus.SUCCEEDED:
            message = child.error.message if child.error else child.status.value
            raise NodeFailure(
                f"sub-workflow {workflow_id!r} {child.status.value}: {message}",
                kind="subworkflow",
                execution_id=child_id,
            )
        return child.outputs


def _with_attempt_base(request: RunRequest, previous: Mapping[str, NodeRun]) -> RunRequest:
    """Carry the last attempt number of each node into a fresh whole-workflow attempt."""
    assert request.resume is not None
    bases = {
        node_id: NodeRun(
            execution_id=run.execution_id,
            node_id=node_id,
            status=NodeStatus.PENDING,
            attempt=run.attempt,
        )
        for node_id, run in previous.items()
    }
    resume = ResumeState(
        node_runs=bases, next_seq=request.resume.next_seq, started_at=request.resume.started_at
    )
    return RunRequest(
        execution_id=request.execution_id,
        workflow=request.workflow,
        inputs=request.inputs,
        mode=request.mode,
        resume=resume,
        variables=request.variables,
        depth=request.depth,
        parent_id=request.parent_id,
        attempt=request.attempt,
    )


@dataclass(slots=True)
class _Outcome:
    """How one node's run ended, before it is recorded."""

    status: NodeStatus
    outputs: NodeOutput | None = None
    error: NodeError | None = None
    wait: Mapping[str, Any] | None = None
    #: The failure stops the execution (``on_error: stop`` without ContinueOnError).
    stops: bool = False


class _Run:
    """The state of one run of one execution."""

    def __init__(
        self,
        executor: Executor,
        plan: Plan,
        request: RunRequest,
        control: ExecutionControl,
        attempt: int,
    ) -> None:
        self.x = executor
        self.plan = plan
        self.request = request
        self.control = control
        self.attempt = attempt
        self.id = request.execution_id
        self.workflow_id = request.workflow.id
        resume = request.resume or ResumeState()
        self.seq = resume.next_seq
        self.started_at = resume.started_at or executor.clock()
        self.prior: Mapping[str, NodeRun] = resume.node_runs
        self.runs: dict[str, NodeRun] = {}
        self.outputs: dict[str, NodeOutput] = {}
        self.edge_state: dict[str, int] = {}
        self.edge_value: dict[str, Any] = {}
        self.unresolved: dict[str, int] = {
            node_id: len(edges) for node_id, edges in plan.incoming.items()
        }
        self.ready: deque[str] = deque()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.waiting: set[str] = set()
        self.pending_events: list[Event] = []
        #: Node runs decided since the last checkpoint (skips, finishes).
        self._pending_records: list[NodeRun] = []
        self.publish_after_commit: list[Event] = []
        self.node_scope: dict[str, Any] = {}
        self.status = ExecutionStatus.RUNNING
        self.error: NodeError | None = None
        self.failed_unhandled = False
        self.stopping = False
        self.idle: asyncio.Future[None] | None = None
        self.services = executor.services
        self.execution_info = {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "workflow_version": request.workflow.version,
            "mode": request.mode.value,
            "attempt": attempt,
        }

    # -- the run -------------------------------------------------------------------------

    async def execute(self) -> ExecutionResult:
        stop_listening = self.control.listen(self._on_signal)
        deadline_ms = self.request.workflow.settings.max_execution_time_ms
        try:
            if deadline_ms is not None:
                try:
                    async with asyncio.timeout(deadline_ms / 1000.0):
                        await self._drive()
                except TimeoutError:
                    self._fail_execution(
                        NodeError(
                            f"the execution ran longer than max_execution_time_ms={deadline_ms}",
                            kind="timeout",
                        )
                    )
                    await self._cancel_running()
            else:
                await self._drive()
        except asyncio.CancelledError:
            # The host is shutting down: stop the nodes, leave the execution resumable.
            self.stopping = True
            await self._cancel_running()
            raise
        finally:
            stop_listening()
        return await self._finish()

    async def _drive(self) -> None:
        first = self.request.resume is None or not any(
            run.status is not NodeStatus.PENDING for run in self.prior.values()
        )
        if first:
            self._emit(
                EventType.EXECUTION_STARTED,
                data={
                    "workflow_id": self.workflow_id,
                    "workflow_version": self.request.workflow.version,
                    "mode": self.request.mode.value,
                    "inputs": self.request.inputs,
                    "attempt": self.attempt,
                },
            )
        else:
            self._emit(
                EventType.EXECUTION_STATUS,
                data={"status": ExecutionStatus.RUNNING.value, "previous": "resumed"},
            )
        self._replay()
        started = self._take_startable()
        await self._checkpoint(
            [run for _, run in started],
            ExecutionUpdate(status=ExecutionStatus.RUNNING, started_at=self.started_at),
        )
        self._launch(started)
        while True:
            if self.control.cancelled or self.stopping:
                await self._cancel_running()
                return
            if not self.running:
                if self.ready and self.control.paused:
                    await self._pause_until_signal()
                    continue
                if self.ready:
                    started = self._take_startable()
                    await self._checkpoint([run for _, run in started])
                    self._launch(started)
                    continue
                return
            self.idle = asyncio.get_running_loop().create_future()
            await self.idle

    def _on_signal(self, signal: ControlSignal) -> None:
        if signal is ControlSignal.PAUSE:
            self._set_status(ExecutionStatus.PAUSED)
        elif signal is ControlSignal.RESUME:
            self._set_status(ExecutionStatus.RUNNING)
        self._wake()

    def _wake(self) -> None:
        if self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    async def _pause_until_signal(self) -> None:
        await self._checkpoint([], ExecutionUpdate(status=ExecutionStatus.PAUSED))
        self.idle = asyncio.get_running_loop().create_future()
        await self.idle
        if not self.control.paused and not self.control.cancelled:
            await self._checkpoint([], ExecutionUpdate(status=ExecutionStatus.RUNNING))

    def _set_status(self, status: ExecutionStatus) -> None:
        if status is self.status:
            return
        previous = self.status
        self.status = status
        self._emit(
            EventType.EXECUTION_STATUS, data={"status": status.value, "previous": previous.value}
        )

    # -- readiness -------------------------------------------------------------------------

    def _replay(self) -> None:
        """Mark what a previous run finished, without running or announcing it again."""
        finished = [
            node_id
            for node_id in self.plan.order
            if (prior := self.prior.get(node_id)) is not None and prior.status.finished
        ]
        # Record every finished run before resolving any edge, so that resolving one does
        # not make a later finished node ready to run again.
        for node_id in finished:
            self.runs[node_id] = self.prior[node_id]
        for node_id in finished:
            outputs = self.prior[node_id].outputs or {}
            self._record_outputs(node_id, outputs)
            self._resolve_edges(node_id, outputs, announce=False)
        # Nodes with incoming edges became ready above, as their edges resolved.
        for node_id in self.plan.order:
            if not self.plan.incoming[node_id] and node_id not in self.runs:
                self._become_ready(node_id)

    def _become_ready(self, node_id: str) -> None:
        incoming = self.plan.incoming[node_id]
        if incoming and not any(self.edge_state.get(e.id) == _FIRED for e in incoming):
            self._skip(node_id)
            return
        prior = self.prior.get(node_id)
        if prior is not None and prior.status is NodeStatus.WAITING and not self._wait_over(prior):
            self.runs[node_id] = prior
            self.waiting.add(node_id)
            return
        self.ready.append(node_id)

    def _wait_over(self, prior: NodeRun) -> bool:
        wait = prior.wait or {}
        if wait.get("kind") == "timer":
            return float(wait.get("due_at", 0)) <= self.x.clock()
        return prior.decision is not None

    def _skip(self, node_id: str) -> None:
        """Dead-path elimination: a node none of whose incoming edges fired."""
        now = self.x.clock()
        run = NodeRun(
            self.id, node_id, NodeStatus.SKIPPED, attempt=0, started_at=now, finished_at=now
        )
        self.runs[node_id] = run
        self._pending_records.append(run)
        node = self.plan.nodes[node_id]
        self._emit(
            EventType.NODE_FINISHED,
            node_id,
            {
                "node_type": node.type,
                "node_name": node.label,
                "status": NodeStatus.SKIPPED.value,
                "outputs": {},
                "duration_ms": 0.0,
                "inputs_size": 0,
                "outputs_size": 0,
                "attempt": 0,
            },
        )
        self._resolve_edges(node_id, {}, announce=True)

    def _resolve_edges(self, node_id: str, outputs: NodeOutput, *, announce: bool) -> None:
        for edge in self.plan.outgoing[node_id]:
            if edge.source_port in outputs:
                self.edge_state[edge.id] = _FIRED
                value = outputs[edge.source_port]
                self.edge_value[edge.id] = value
                if announce:
                    self._emit(
                        EventType.EDGE_TRAVERSED,
                        node_id,
                        {
                            "edge_id": edge.id,
                            "source_port": edge.source_port,
                            "target": edge.target,
                            "target_port": edge.target_port,
                            "value": value,
                        },
                    )
                target = edge.target
                if (
                    self.plan.first_input[target]
                    and target not in self.runs
                    and target not in self.running
                    and target not in self.ready
                ):
                    # flow.merge mode first: runs on the first arrival; later ones are ignored.
                    self.unresolved[target] -= 1
                    self.ready.append(target)
                    continue
            else:
                self.edge_state[edge.id] = _DEAD
            self._resolve_one(edge.target)

    def _resolve_one(self, target: str) -> None:
        self.unresolved[target] -= 1
        if (
            self.unresolved[target] == 0
            and target not in self.runs
            and target not in self.running
            and target not in self.ready
        ):
            self._become_ready(target)

    # -- starting nodes --------------------------------------------------------------------

    def _take_startable(self) -> list[tuple[str, NodeRun]]:
        """Pop the ready nodes that may start now and record them as running."""
        started: list[tuple[str, NodeRun]] = []
        if self.control.paused or self.control.cancelled or self.stopping:
            return started
        limit = max(self.request.workflow.settings.max_parallel_nodes, 1)
        now = self.x.clock()
        while self.ready and len(self.running) + len(started) < limit:
            node_id = self.ready.popleft()
            node = self.plan.nodes[node_id]
            attempt = self._next_attempt(node_id)
            run = NodeRun(self.id, node_id, NodeStatus.RUNNING, attempt=attempt, started_at=now)
            self.runs[node_id] = run
            started.append((node_id, run))
            self._emit(
                EventType.NODE_STARTED,
                node_id,
                {"node_type": node.type, "node_name": node.label, "attempt": attempt},
            )
        return started

    def _next_attempt(self, node_id: str) -> int:
        prior = self.prior.get(node_id)
        if prior is None:
            return 1
        if prior.status is NodeStatus.WAITING:
            return prior.attempt  # the same attempt goes on after its wait
        return prior.attempt + 1

    def _launch(self, started: Sequence[tuple[str, NodeRun]]) -> None:
        for node_id, run in started:
            task = asyncio.create_task(self._run_node(node_id, run), name=f"node:{node_id}")
            self.running[node_id] = task

    def _inputs_for(self, node_id: str) -> tuple[dict[str, Any], tuple[tuple[str, str, Any], ...]]:
        incoming = self.plan.incoming[node_id]
        if not incoming:
            inputs = dict(self.request.inputs)
            if DEFAULT_PORT in self.plan.input_ports[node_id] and DEFAULT_PORT not in inputs:
                # The whole input object is the value of a start node's default port.
                inputs[DEFAULT_PORT] = dict(self.request.inputs)
            return inputs, ()
        inputs = {}
        arrivals = []
        for edge in incoming:
            if self.edge_state.get(edge.id) == _FIRED:
                value = self.edge_value[edge.id]
                inputs[edge.target_port] = value
                arrivals.append((edge.source, edge.target_port, value))
        return inputs, tuple(arrivals)

    # -- running one node ------------------------------------------------------------------

    async def _run_node(self, node_id: str, run: NodeRun) -> None:
        try:
            outcome = await self._attempts(node_id, run)
        except asyncio.CancelledError:
            outcome = _Outcome(
                NodeStatus.CANCELLED,
                error=NodeError(self.control.cancel_reason or "cancelled", kind="cancelled"),
            )
        except Exception as exc:  # a bug in the executor itself must still end the node
            outcome = _Outcome(
                NodeStatus.FAILED,
                error=NodeError(f"internal error: {exc!r}", kind="internal"),
                stops=True,
            )
        self.running.pop(node_id, None)
        await self._complete(node_id, run, outcome)

    async def _attempts(self, node_id: str, run: NodeRun) -> _Outcome:
        node = self.plan.nodes[node_id]
        node_type = self.plan.types[node_id]
        inputs, arrivals = self._inputs_for(node_id)
        prior = self.prior.get(node_id)
        decision = prior.decision if prior is not None else None
        wait_state = prior.wait if prior is not None else None
        scope = self._scope(node_id, inputs)
        if (
            decision is not None
            and prior is not None
            and prior.status is NodeStatus.WAITING
            and (prior.wait or {}).get("kind") == "approval"
        ):
            self._emit_decision(node_id, decision)

        if node.filters is not None:
            try:
                spec = self.plan.filters[node_id].render(scope)
                if not matches(spec):
                    return _Outcome(NodeStatus.FILTERED)
            except (ExpressionError, FilterError) as exc:
                return self._failure(node, NodeError(f"filters: {exc}", kind="filter"))

        if node.needs_approval:
            if decision is None:
                return self._suspend(node, Suspend({"kind": "approval", "message": ""}))
            if not decision.approved:
                return self._failure(
                    node,
                    NodeError(
                        f"rejected by {decision.by or 'a reviewer'}"
                        + (f": {decision.comment}" if decision.comment else ""),
                        kind="rejected",
                    ),
                )

        if node_type.manifest.type in self.services.disabled_types:
            return self._failure(
                node,
                NodeError(
                    f"component {node_type.manifest.type!r} is disabled by the operator",
                    kind="disabled",
                ),
            )

        policy = node.retry
        max_attempts = policy.max_attempts if policy is not None else 1
        first_attempt = run.attempt
        attempt = first_attempt
        while True:
            started = self.x.clock()
            try:
                outputs = await self._attempt(
                    node, node_type, inputs, arrivals, scope, attempt, decision, wait_state
                )
                return _Outcome(NodeStatus.SUCCEEDED, outputs=outputs)
            except Suspend as suspend:
                return self._suspend(node, suspend)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _error_of(exc, node)
            tries_done = attempt - first_attempt + 1
            will_retry = policy is not None and tries_done < max_attempts
            self._emit(
                EventType.NODE_FAILED,
                node_id,
                {
                    "node_type": node.type,
                    "node_name": node.label,
                    "error": error.as_dict(),
                    "attempt": attempt,
                    "will_retry": will_retry,
                    "duration_ms": (self.x.clock() - started) * 1000.0,
                },
            )
            if not will_retry or policy is None:
                return self._failure(node, error, announced=True)
            delay = policy.delay_before(tries_done + 1)
            if policy.jitter:
                delay *= 1.0 + policy.jitter * (2.0 * self.x.rng() - 1.0)
            if delay > 0:
                await self.x.sleep(delay)
            attempt += 1
            self.runs[node_id] = NodeRun(
                self.id, node_id, NodeStatus.RUNNING, attempt=attempt, started_at=self.x.clock()
            )

    async def _attempt(
        self,
        node: Node,
        node_type: NodeType,
        inputs: dict[str, Any],
        arrivals: tuple[tuple[str, str, Any], ...],
        scope: dict[str, Any],
        attempt: int,
        decision: Any,
        wait_state: Mapping[str, Any] | None,
    ) -> NodeOutput:
        compiled: CompiledValue = self.plan.configs[node.id]
        if compiled.is_static:
            config = self.plan.static_configs[node.id]
        else:
            try:
                config = compiled.render(scope)
            except ExpressionError as exc:
                raise NodeFailure(
                    f"node {node.id!r}: config expression {exc.expression!r}: {exc.message}",
                    kind="expression",
                ) from None
        if self.request.mode is ExecutionMode.SIMULATE and node_type.manifest.side_effects:
            pinned = config.get("pinned_output")
            if isinstance(pinned, Mapping):
                return pinned
        ctx = NodeContext(
            node=node,
            inputs=inputs,
            config=config,
            execution_id=self.id,
            workflow_id=self.workflow_id,
            mode=self.request.mode,
            attempt=attempt,
            services=self.services,
            emit=_Emitter(self, node.id),
            decision=decision,
            wait_state=wait_state,
            depth=self.request.depth,
            variables=self.request.variables,
            arrivals=arrivals,
        )
        if node.timeout_ms is not None:
            try:
                async with asyncio.timeout(node.timeout_ms / 1000.0):
                    outputs = await node_type.run(ctx)
            except TimeoutError:
                raise NodeFailure(
                    f"node {node.id!r} timed out after {node.timeout_ms} ms", kind="timeout"
                ) from None
        else:
            outputs = await node_type.run(ctx)
        if not isinstance(outputs, Mapping):
            raise NodeFailure(
                f"node type {node.type!r} returned {type(outputs).__name__}, not a port mapping",
                kind="internal",
            )
        return outputs

    def _scope(self, node_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        incoming = self.plan.incoming[node_id]
        if not incoming:
            prev: Any = {"args": self.request.inputs}
        else:
            fired = [self.edge_value[e.id] for e in incoming if self.edge_state.get(e.id) == _FIRED]
            prev = fired[0] if len(fired) == 1 else dict(inputs)
        return {
            "input": inputs,
            "node": self.node_scope,
            "args": self.request.inputs,
            "vars": self.request.variables,
            "prev": prev,
            "execution": self.execution_info,
            "kv": self.services.extra.get("kv", {}),
        }

    def _suspend(self, node: Node, suspend: Suspend) -> _Outcome:
        if suspend.wait.get("kind") == "approval":
            self._emit(
                EventType.APPROVAL_REQUESTED,
                node.id,
                {"message": suspend.wait.get("message", ""), "node_name": node.label},
            )
        return _Outcome(NodeStatus.WAITING, wait=dict(suspend.wait))

    def _emit_decision(self, node_id: str, decision: Any) -> None:
        self._emit(
            EventType.APPROVAL_RESOLVED,
            node_id,
            {"approved": decision.approved, "by": decision.by, "comment": decision.comment},
        )

    def _failure(self, node: Node, error: NodeError, *, announced: bool = False) -> _Outcome:
        if not announced:
            self._emit(
                EventType.NODE_FAILED,
                node.id,
                {
                    "node_type": node.type,
                    "node_name": node.label,
                    "error": error.as_dict(),
                    "attempt": self.runs[node.id].attempt,
                    "will_retry": False,
                    "duration_ms": 0.0,
                },
            )
        if node.on_error is OnError.CONTINUE:
            value = {"error": error.message, "kind": error.kind, "failed_node_id": node.id}
            return _Outcome(NodeStatus.FAILED, outputs={ERROR_PORT: value}, error=error)
        if node.on_error is OnError.SKIP:
            return _Outcome(NodeStatus.SKIPPED, error=error)
        stops = self.request.workflow.settings.on_error.kind is not WorkflowOnErrorKind.CONTINUE
        return _Outcome(NodeStatus.FAILED, error=error, stops=stops)

    # -- finishing one node ----------------------------------------------------------------

    async def _complete(self, node_id: str, started: NodeRun, outcome: _Outcome) -> None:
        node = self.plan.nodes[node_id]
        now = self.x.clock()
        current = self.runs.get(node_id, started)
        prior = self.prior.get(node_id)
        decision = prior.decision if prior is not None else None
        outputs = outcome.outputs or {}
        run = NodeRun(
            execution_id=self.id,
            node_id=node_id,
            status=outcome.status,
            attempt=current.attempt,
            inputs=None,
            outputs=outputs if outcome.outputs is not None else None,
            error=outcome.error,
            started_at=current.started_at,
            finished_at=None if outcome.status is NodeStatus.WAITING else now,
            wait=outcome.wait,
            decision=decision,
        )
        self.runs[node_id] = run
        if outcome.status is NodeStatus.WAITING:
            self.waiting.add(node_id)
        else:
            self.waiting.discard(node_id)
            if outcome.status is not NodeStatus.FAILED or outputs:
                self._emit(
                    EventType.NODE_FINISHED,
                    node_id,
                    {
                        "node_type": node.type,
                        "node_name": node.label,
                        "status": outcome.status.value,
                        "outputs": outputs,
                        "duration_ms": (now - (current.started_at or now)) * 1000.0,
                        "outputs_size": json_size(outputs),
                        "attempt": current.attempt,
                    },
                )
            if outcome.status is NodeStatus.FAILED and outcome.error is not None:
                if outcome.stops:
                    self._fail_execution(outcome.error, node_id)
                elif node.on_error is OnError.STOP:
                    # ContinueOnError: the failure is recorded, the other branches go on.
                    self.failed_unhandled = True
                    self.error = self.error or _node_error(outcome.error, node_id)
            if outcome.status is not NodeStatus.CANCELLED:
                self._record_outputs(node_id, outputs)
                self._resolve_edges(node_id, outputs, announce=True)

        self._pending_records.append(run)
        started_now = [] if self.stopping else self._take_startable()
        records = self._pending_records + [r for _, r in started_now]
        self._pending_records = []
        await self._checkpoint(records)
        if self.stopping or self.control.cancelled:
            for started_id, started_run in started_now:
                self.runs[started_id] = started_run
            return
        self._launch(started_now)
        if not self.running:
            self._wake()

    def _record_outputs(self, node_id: str, outputs: NodeOutput) -> None:
        self.outputs[node_id] = outputs
        self.node_scope[node_id] = outputs
        name = self.plan.nodes[node_id].name
        if name and name not in self.plan.nodes:
            self.node_scope[name] = outputs

    def _fail_execution(self, error: NodeError, node_id: str | None = None) -> None:
        if self.status is ExecutionStatus.FAILED:
            return
        self.status = ExecutionStatus.FAILED
        self.error = _node_error(error, node_id) if node_id else error
        self.stopping = True
        for task in self.running.values():
            task.cancel()
        self._wake()

    async def _cancel_running(self) -> None:
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the end ---------------------------------------------------------------------------

    async def _finish(self) -> ExecutionResult:
        now = self.x.clock()
        for node_id, run in list(self.runs.items()):
            if run.status is NodeStatus.RUNNING:
                # Cancelled before its task got to run: it never started.
                cancelled = NodeRun(
                    self.id,
                    node_id,
                    NodeStatus.CANCELLED,
                    attempt=run.attempt,
                    error=NodeError(self.control.cancel_reason or "cancelled", kind="cancelled"),
                    started_at=run.started_at,
                    finished_at=now,
                )
                self.runs[node_id] = cancelled
                self._pending_records.append(cancelled)
        if self.status is ExecutionStatus.FAILED:
            pass  # a stopping failure decided it already
        elif self.control.cancelled:
            self.status = ExecutionStatus.CANCELLED
            self.error = NodeError(self.control.cancel_reason or "cancelled", kind="cancelled")
        elif self.waiting:
            self.status = ExecutionStatus.WAITING
        elif self.failed_unhandled:
            self.status = ExecutionStatus.FAILED
        else:
            self.status = ExecutionStatus.SUCCEEDED
        outputs = {
            node_id: dict(self.outputs[node_id])
            for node_id in self.plan.end_nodes
            if node_id in self.outputs and self.runs[node_id].status is NodeStatus.SUCCEEDED
        }
        finished = self.status.finished
        if finished:
            self._emit(
                EventType.EXECUTION_FINISHED,
                data={
                    "status": self.status.value,
                    "duration_ms": (now - self.started_at) * 1000.0,
                    "error": self.error.as_dict() if self.error else None,
                    "outputs": outputs,
                },
                after_commit=True,
            )
        else:
            self._emit(
                EventType.EXECUTION_STATUS,
                data={"status": self.status.value, "previous": ExecutionStatus.RUNNING.value},
                after_commit=True,
            )
        records = self._pending_records
        self._pending_records = []
        await self._checkpoint(
            records,
            ExecutionUpdate(
                status=self.status,
                finished_at=now if finished else None,
                error=self.error,
                outputs=outputs,
            ),
            final=True,
        )
        return ExecutionResult(
            execution_id=self.id,
            status=self.status,
            node_runs=dict(self.runs),
            outputs=outputs,
            error=self.error,
            started_at=self.started_at,
            finished_at=now if finished else None,
            total_nodes=len(self.plan.nodes),
            next_seq=self.seq,
        )

    # -- events and checkpoints ------------------------------------------------------------

    def _emit(
        self,
        type_: EventType,
        node_id: str | None = None,
        data: Any = None,
        *,
        after_commit: bool = False,
    ) -> None:
        """Record an event for the next checkpoint and publish it live, at once or, for the
        events that end a run, once committed (a reader told "finished" finds it stored)."""
        event = Event(
            execution_id=self.id,
            seq=self.seq,
            type=type_,
            timestamp=self.x.clock(),
            workflow_id=self.workflow_id,
            node_id=node_id,
            data=data if data is not None else {},
        )
        self.seq += 1
        self.pending_events.append(event)
        if after_commit:
            self.publish_after_commit.append(event)
        else:
            self.x.events.publish(event)

    async def _checkpoint(
        self,
        node_runs: Sequence[NodeRun],
        execution: ExecutionUpdate | None = None,
        *,
        final: bool = False,
    ) -> None:
        events = self.pending_events
        self.pending_events = []
        if not node_runs and not events and execution is None:
            return
        await self.x.checkpoints.save(
            Checkpoint(
                execution_id=self.id,
                workflow_id=self.workflow_id,
                node_runs=tuple(node_runs),
                events=tuple(events),
                execution=execution,
                final=final,
            )
        )
        if self.publish_after_commit:
            deferred, self.publish_after_commit = self.publish_after_commit, []
            for event in deferred:
                self.x.events.publish(event)


class _Emitter:
    """The ``emit`` a node receives: node events, log lines and debug popups."""

    __slots__ = ("node_id", "run")

    def __init__(self, run: _Run, node_id: str) -> None:
        self.run = run
        self.node_id = node_id

    def __call__(self, kind: str, message: str = "", /, **data: Any) -> None:
        if kind == "popup":
            self.run._emit(
                EventType.DEBUG_POPUP,
                self.node_id,
                {"title": data.get("title", message), "content": data.get("content")},
            )
            return
        self.run._emit(
            EventType.NODE_EVENT, self.node_id, {"kind": kind, "message": message, **data}
        )


def _error_of(exc: BaseException, node: Node) -> NodeError:
    if isinstance(exc, NodeFailure):
        return NodeError(exc.message, kind=exc.kind, details=exc.details)
    if isinstance(exc, TimeoutError):
        return NodeError(f"node {node.id!r} timed out", kind="timeout")
    return NodeError(f"{type(exc).__name__}: {exc}", kind="node")


def _node_error(error: NodeError, node_id: str | None) -> NodeError:
    if node_id is None or "node_id" in error.details:
        return error
    return NodeError(error.message, kind=error.kind, details={**error.details, "node_id": node_id})
