"""Runs one execution of a workflow graph (docs/architecture.md, "Execution semantics").

Usage::

    executor = Executor(registry, checkpoints, events, services)
    result = await executor.run(RunRequest(execution_id, workflow, inputs), control)

The run is event-driven: when a node finishes, its outgoing edges fire or die, the nodes whose
incoming edges are all resolved become ready, and as many of them start as the parallel limit
and the control allow. Each node boundary is one checkpoint: the finished node's result, the
runs of the nodes it started and the events since the last checkpoint commit together.

Pipelining: a node whose type is ``pure`` (touches nothing outside the run) may start while
the checkpoints before it are still being committed, when the store can queue them
(``PipelinedCheckpointStore.submit``); any other node starts only once everything before it
is committed. A sequential chain runs in one task: the one node a finished node lets start
runs next in the same task, without a task per node.

History: a workflow whose ``settings.save_history`` keeps no history of a run that ended
(``none``; ``failed`` for a run that did not fail) has its rows deleted at the end
(``Checkpoint.discard``); with ``RunRequest.history_in_memory`` its checkpoints are not
written at all unless the run pauses, waits or is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runnel.engine.control import ControlSignal, ExecutionControl
from runnel.engine.expressions import ExpressionEngine, ExpressionError
from runnel.engine.filters import FilterError, matches
from runnel.engine.node import NodeContext, NodeOutput, NodeType
from runnel.engine.plan import Plan, Step, plan_for
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
from runnel.model.workflow import DEFAULT_PORT, Node, OnError, SaveHistory, WorkflowOnErrorKind

__all__ = ["ERROR_PORT", "Executor", "keeps_history"]

#: The port a node with ``on_error: continue`` fires with its failure.
ERROR_PORT = "error"

_FIRED = 1
_DEAD = 2

#: A chain run in one task yields to the event loop after this many nodes in a row.
_INLINE_NODES_PER_TURN = 64

#: Statuses a run ends a turn in that must be durable whatever the history setting.
_DURABLE_STATUSES = frozenset({ExecutionStatus.WAITING, ExecutionStatus.PAUSED})


def keeps_history(setting: SaveHistory, status: ExecutionStatus) -> bool:
    """Whether an execution that ended with ``status`` keeps its history under
    ``setting``: ``all`` every one, ``failed`` failed ones, ``none`` none. A run that has
    not ended (waiting, paused) is always kept."""
    if setting is SaveHistory.ALL or not status.finished:
        return True
    return setting is SaveHistory.FAILED and status is ExecutionStatus.FAILED


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
        #: ``PipelinedCheckpointStore.submit`` when the store has it.
        self.submit: Callable[[Checkpoint], Awaitable[None]] | None = getattr(
            checkpoints, "submit", None
        )
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
            run = _Run(self, plan, request, control, attempt, max_attempts)
            result = await run.execute()
            if not run.retrying:
                return result
            attempt += 1
            # A fresh run of the whole graph; node attempts keep counting so that every
            # try has its own idempotency key.
            request = dataclasses.replace(
                request,
                resume=ResumeState(
                    node_runs={},
                    next_seq=result.next_seq,
                    started_at=result.started_at,
                ),
                attempt=attempt,
                create=run.create,
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
        # The child's row is inserted with its first checkpoint.
        child = await self.run(
            RunRequest(
                execution_id=child_id,
                workflow=workflow,
                inputs=inputs,
                mode=ctx.mode,
                variables=ctx.variables,
                depth=ctx.depth + 1,
                parent_id=ctx.execution_id,
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
    return dataclasses.replace(request, resume=resume)


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
        max_attempts: int = 1,
    ) -> None:
        self.x = executor
        self.plan = plan
        self.request = request
        self.control = control
        self.attempt = attempt
        self.max_attempts = max_attempts
        #: The run failed and ``RetryWorkflow`` runs the graph again (set by ``_finish``).
        self.retrying = False
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
        self.steps = plan.steps
        self._clock = executor.clock
        self._publish = executor.events.publish
        self._limit = max(request.workflow.settings.max_parallel_nodes, 1)
        # -- where checkpoints go (see the module docstring) --
        #: The execution row to insert with the first checkpoint written (None: it exists).
        self.create: Execution | None = request.create
        self.history = request.workflow.settings.save_history
        #: Checkpoints held in memory (``RunRequest.history_in_memory``), as one.
        self.buffering = request.history_in_memory and self.history is not SaveHistory.ALL
        self.buffered = _Batch()
        #: Checkpoints handed to the store, not yet known to be committed.
        self.inflight: list[Awaitable[None]] = []
        #: Pipelined checkpoints of this loop turn, handed over as one at its end.
        self.unsent = _Batch()
        self._send_scheduled = False
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
            wait=not self._all_pure(started),
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
                    await self._checkpoint(
                        [run for _, run in started], wait=not self._all_pure(started)
                    )
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
        incoming = self.steps[node_id].incoming
        if incoming:
            edge_state = self.edge_state
            for edge in incoming:
                if edge_state.get(edge.id) == _FIRED:
                    break
            else:
                self._skip(node_id)
                return
        prior = self.prior.get(node_id) if self.prior else None
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
        steps = self.steps
        for edge in steps[node_id].outgoing:
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
                    steps[target].first_input
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
        ready = self.ready
        if not ready:
            return started
        control = self.control
        if control.paused or control.cancelled or self.stopping:
            return started
        limit = self._limit - len(self.running)
        now = self._clock()
        steps = self.steps
        runs = self.runs
        while ready and len(started) < limit:
            node_id = ready.popleft()
            step = steps[node_id]
            attempt = self._next_attempt(node_id) if self.prior else 1
            run = NodeRun(self.id, node_id, NodeStatus.RUNNING, attempt, None, None, None, now)
            runs[node_id] = run
            started.append((node_id, run))
            self._emit(
                EventType.NODE_STARTED,
                node_id,
                {"node_type": step.node.type, "node_name": step.label, "attempt": attempt},
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

    def _all_pure(self, started: Iterable[tuple[str, NodeRun]]) -> bool:
        """Whether every node of ``started`` may start before the checkpoints before it
        are committed (its type is ``pure``)."""
        steps = self.steps
        return all(steps[node_id].pure for node_id, _ in started)

    def _inputs_for(self, step: Step) -> tuple[dict[str, Any], tuple[tuple[str, str, Any], ...]]:
        incoming = step.incoming
        if not incoming:
            inputs = dict(self.request.inputs)
            if step.default_input and DEFAULT_PORT not in inputs:
                # The whole input object is the value of a start node's default port.
                inputs[DEFAULT_PORT] = dict(self.request.inputs)
            return inputs, ()
        edge_state = self.edge_state
        if len(incoming) == 1:
            # One incoming edge (a chain): what the loop below makes, without the loop.
            edge = incoming[0]
            if edge_state.get(edge.id) != _FIRED:
                return {}, ()
            value = self.edge_value[edge.id]
            return {edge.target_port: value}, ((edge.source, edge.target_port, value),)
        inputs = {}
        arrivals = []
        for edge in incoming:
            if edge_state.get(edge.id) == _FIRED:
                value = self.edge_value[edge.id]
                inputs[edge.target_port] = value
                arrivals.append((edge.source, edge.target_port, value))
        return inputs, tuple(arrivals)

    # -- running one node ------------------------------------------------------------------

    async def _run_node(self, node_id: str, run: NodeRun) -> None:
        """Run a node, then, while its end lets exactly one node start, that one in the
        same task (``_after_complete`` registers it as running under this task)."""
        task = asyncio.current_task()
        inline = 0
        steps = self.steps
        disabled = self.services.disabled_types
        while True:
            step = steps[node_id]
            try:
                if step.simple and not self.prior and not disabled:
                    # One attempt with nothing to decide first (``_attempts`` without its
                    # coroutine): the common case, a chain's nodes.
                    inputs, arrivals = self._inputs_for(step)
                    scope = None if step.static_config is not None else self._scope(step, inputs)
                    started = self._clock()
                    try:
                        prepared = self._prepare(
                            step, inputs, arrivals, scope, run.attempt, None, None
                        )
                        if isinstance(prepared, NodeContext):
                            node = step.node
                            if node.timeout_ms is not None:
                                outputs = await _run_with_timeout(node, step.type, prepared)
                            else:
                                outputs = await step.type.run(prepared)
                            _check_outputs(node, outputs)
                        else:
                            outputs = prepared  # simulate: the pinned output
                        outcome = _Outcome(NodeStatus.SUCCEEDED, outputs)
                    except Suspend as suspend:
                        outcome = self._suspend(step.node, suspend)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        outcome = self._failure(
                            step.node,
                            self._announce_failure(step.node, exc, run.attempt, started, False),
                            announced=True,
                        )
                else:
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
            started_now, must_wait = self._complete(node_id, run, outcome)
            if must_wait:
                await self._committed()
            follow = self._after_complete(started_now, task)
            if follow is None:
                return
            node_id, run = follow
            inline += 1
            if inline % _INLINE_NODES_PER_TURN == 0:
                await asyncio.sleep(0)  # let the loop breathe on a long chain

    async def _attempts(self, node_id: str, run: NodeRun) -> _Outcome:
        step = self.steps[node_id]
        node = step.node
        node_type = step.type
        inputs, arrivals = self._inputs_for(step)
        prior = self.prior.get(node_id) if self.prior else None
        decision = prior.decision if prior is not None else None
        wait_state = prior.wait if prior is not None else None
        # The expressions' scope, made only for a node that has expressions.
        scope = (
            self._scope(step, inputs)
            if step.filters is not None or step.static_config is None
            else None
        )
        if (
            decision is not None
            and prior is not None
            and prior.status is NodeStatus.WAITING
            and (prior.wait or {}).get("kind") == "approval"
        ):
            self._emit_decision(node_id, decision)

        if step.filters is not None:
            assert scope is not None
            try:
                spec = step.filters.render(scope)
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

        disabled = self.services.disabled_types
        if disabled and node_type.manifest.type in disabled:
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
            started = self._clock()
            try:
                prepared = self._prepare(
                    step, inputs, arrivals, scope, attempt, decision, wait_state
                )
                if isinstance(prepared, NodeContext):
                    if node.timeout_ms is not None:
                        outputs = await _run_with_timeout(node, node_type, prepared)
                    else:
                        outputs = await node_type.run(prepared)
                    _check_outputs(node, outputs)
                else:
                    outputs = prepared  # simulate: the pinned output
                return _Outcome(NodeStatus.SUCCEEDED, outputs)
            except Suspend as suspend:
                return self._suspend(node, suspend)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = exc
            tries_done = attempt - first_attempt + 1
            will_retry = policy is not None and tries_done < max_attempts
            error = self._announce_failure(node, failure, attempt, started, will_retry)
            if not will_retry or policy is None:
                return self._failure(node, error, announced=True)
            delay = policy.delay_before(tries_done + 1)
            if policy.jitter:
                delay *= 1.0 + policy.jitter * (2.0 * self.x.rng() - 1.0)
            if delay > 0:
                await self.x.sleep(delay)
            attempt += 1
            self.runs[node_id] = NodeRun(
                self.id, node_id, NodeStatus.RUNNING, attempt=attempt, started_at=self._clock()
            )

    def _announce_failure(
        self, node: Node, exc: Exception, attempt: int, started: float, will_retry: bool
    ) -> NodeError:
        """The error of a failed attempt, announced (``node.failed``)."""
        error = _error_of(exc, node)
        self._emit(
            EventType.NODE_FAILED,
            node.id,
            {
                "node_type": node.type,
                "node_name": node.label,
                "error": error.as_dict(),
                "attempt": attempt,
                "will_retry": will_retry,
                "duration_ms": (self._clock() - started) * 1000.0,
            },
        )
        return error

    def _prepare(
        self,
        step: Step,
        inputs: dict[str, Any],
        arrivals: tuple[tuple[str, str, Any], ...],
        scope: dict[str, Any] | None,
        attempt: int,
        decision: Any,
        wait_state: Mapping[str, Any] | None,
    ) -> NodeContext | NodeOutput:
        """The context of one attempt, its config rendered; or, in simulate mode, the
        pinned output of a node with side effects (a mapping), which then does not run."""
        node = step.node
        config = step.static_config
        if config is None:
            assert scope is not None
            try:
                config = step.config.render(scope)
            except ExpressionError as exc:
                raise NodeFailure(
                    f"node {node.id!r}: config expression {exc.expression!r}: {exc.message}",
                    kind="expression",
                ) from None
        request = self.request
        if request.mode is ExecutionMode.SIMULATE and step.type.manifest.side_effects:
            pinned = config.get("pinned_output")
            if isinstance(pinned, Mapping):
                return pinned
        return NodeContext(
            node,
            inputs,
            config,
            self.id,
            self.workflow_id,
            request.mode,
            attempt,
            self.services,
            _Emitter(self, node.id),
            decision,
            wait_state,
            request.depth,
            request.variables,
            arrivals,
        )

    def _scope(self, step: Step, inputs: Mapping[str, Any]) -> dict[str, Any]:
        incoming = step.incoming
        if not incoming:
            prev: Any = {"args": self.request.inputs}
        elif len(incoming) == 1:
            # One incoming edge (a chain): its value when it fired, as below.
            edge_id = incoming[0].id
            prev = (
                self.edge_value[edge_id] if self.edge_state.get(edge_id) == _FIRED else dict(inputs)
            )
        else:
            edge_state = self.edge_state
            edge_value = self.edge_value
            fired = [edge_value[e.id] for e in incoming if edge_state.get(e.id) == _FIRED]
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

    def _complete(
        self, node_id: str, started: NodeRun, outcome: _Outcome
    ) -> tuple[list[tuple[str, NodeRun]], bool]:
        """Record how a node ended and take the nodes that became ready, in one checkpoint.
        Returns them, and whether that checkpoint must be committed (``_committed``) before
        they start (``_after_complete``)."""
        step = self.steps[node_id]
        node = step.node
        now = self._clock()
        current = self.runs.get(node_id, started)
        prior = self.prior.get(node_id) if self.prior else None
        decision = prior.decision if prior is not None else None
        status = outcome.status
        outputs = outcome.outputs or {}
        run = NodeRun(
            self.id,
            node_id,
            status,
            current.attempt,
            None,
            outputs if outcome.outputs is not None else None,
            outcome.error,
            current.started_at,
            None if status is NodeStatus.WAITING else now,
            outcome.wait,
            decision,
        )
        self.runs[node_id] = run
        if status is NodeStatus.WAITING:
            self.waiting.add(node_id)
        else:
            if self.waiting:
                self.waiting.discard(node_id)
            if status is not NodeStatus.FAILED or outputs:
                self._emit(
                    EventType.NODE_FINISHED,
                    node_id,
                    {
                        "node_type": node.type,
                        "node_name": step.label,
                        # ``_value_``: the same str as ``.value``, without enum's property.
                        "status": status._value_,
                        "outputs": outputs,
                        "duration_ms": (now - (current.started_at or now)) * 1000.0,
                        "outputs_size": json_size(outputs),
                        "attempt": current.attempt,
                    },
                )
            if status is NodeStatus.FAILED and outcome.error is not None:
                if outcome.stops:
                    self._fail_execution(outcome.error, node_id)
                elif node.on_error is OnError.STOP:
                    # ContinueOnError: the failure is recorded, the other branches go on.
                    self.failed_unhandled = True
                    self.error = self.error or _node_error(outcome.error, node_id)
            if status is not NodeStatus.CANCELLED:
                self._record_outputs(node_id, outputs)
                self._resolve_edges(node_id, outputs, announce=True)

        records = self._pending_records
        records.append(run)
        self._pending_records = []
        started_now = [] if self.stopping else self._take_startable()
        for _, started_run in started_now:
            records.append(started_run)
        must_wait = self._stage(records, wait=not self._all_pure(started_now))
        return started_now, must_wait

    def _after_complete(
        self, started_now: list[tuple[str, NodeRun]], task: asyncio.Task[Any] | None
    ) -> tuple[str, NodeRun] | None:
        """Start the nodes ``_complete`` took, once its checkpoint allows. Returns the one
        that started for ``task`` (the caller's) to run next, registered as running it."""
        if self.stopping or self.control.cancelled:
            for started_id, started_run in started_now:
                self.runs[started_id] = started_run
            return None
        follow: tuple[str, NodeRun] | None = None
        if started_now and task is not None:
            follow = started_now[0]
            self.running[follow[0]] = task
            started_now = started_now[1:]
        if started_now:
            self._launch(started_now)
        if not self.running:
            self._wake()
        return follow

    def _record_outputs(self, node_id: str, outputs: NodeOutput) -> None:
        self.outputs[node_id] = outputs
        self.node_scope[node_id] = outputs
        name = self.steps[node_id].node.name
        if name and name not in self.steps:
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
        self.retrying = (
            self.status is ExecutionStatus.FAILED
            and self.attempt < self.max_attempts
            and not self.control.cancelled
        )
        if finished:
            data = {
                "status": self.status.value,
                "duration_ms": (now - self.started_at) * 1000.0,
                "error": self.error.as_dict() if self.error else None,
                "outputs": outputs,
            }
            if self.retrying:
                # RetryWorkflow runs the graph again: this attempt's end is not the run's.
                data["retrying"] = True
            self._emit(EventType.EXECUTION_FINISHED, data=data, after_commit=True)
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
        await self._settle_inflight()
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
            self.id,
            self.seq,
            type_,
            self._clock(),
            self.workflow_id,
            node_id,
            data if data is not None else {},
        )
        self.seq += 1
        self.pending_events.append(event)
        if after_commit:
            self.publish_after_commit.append(event)
        else:
            self._publish(event)

    async def _checkpoint(
        self,
        node_runs: Sequence[NodeRun],
        execution: ExecutionUpdate | None = None,
        *,
        final: bool = False,
        wait: bool = True,
    ) -> None:
        """Hand a checkpoint to the store. With ``wait``, return once it and every one
        before it are committed; without, only queue it (pure nodes start meanwhile)."""
        if self._stage(node_runs, execution, final=final, wait=wait):
            await self._committed()

    def _stage(
        self,
        node_runs: Sequence[NodeRun],
        execution: ExecutionUpdate | None = None,
        *,
        final: bool = False,
        wait: bool = True,
    ) -> bool:
        """``_checkpoint`` up to the wait: hand the checkpoint over, hold it in memory or
        queue it for the end of the loop turn. True when the caller must then await
        ``_committed`` (it was written, and ``wait``)."""
        events = self.pending_events
        if not node_runs and not events and execution is None:
            return False
        self.pending_events = []
        status = execution.status if execution is not None else None
        if final and status is not None and not self.retrying:
            if not keeps_history(self.history, status):
                # Nothing of this run is kept: drop what is held, delete what was written.
                self.buffered.clear()
                self.unsent.clear()
                if self.create is None:
                    self._write(
                        Checkpoint(
                            self.id,
                            self.workflow_id,
                            None,
                            tuple(node_runs),
                            tuple(events),
                            execution,
                            final,
                            True,
                        )
                    )
                return True
        elif self.buffering and status not in _DURABLE_STATUSES:
            # Held in memory, as one checkpoint (no Checkpoint object per node).
            self.buffered.add(node_runs, events, execution, final, None)
            self._publish_deferred()
            return False
        if not wait and not self.buffered.size and self.x.submit is not None:
            # Pipelined: the checkpoints of this turn go to the store as one, at its end.
            create, self.create = self.create, None
            self._queue_unsent(node_runs, events, execution, final, create)
            return False
        if self.buffered.size:
            self.buffered.add(node_runs, events, execution, final, None)
            checkpoint = self.buffered.take(self.id, self.workflow_id)
        else:
            checkpoint = Checkpoint(
                self.id, self.workflow_id, None, tuple(node_runs), tuple(events), execution, final
            )
        if self.create is not None:
            checkpoint = dataclasses.replace(checkpoint, create=self.create)
            self.create = None
        if not wait and self.x.submit is not None:
            self._queue_unsent(
                checkpoint.node_runs,
                checkpoint.events,
                checkpoint.execution,
                checkpoint.final,
                checkpoint.create,
            )
            return False
        if self.unsent.size:
            self.unsent.add(
                checkpoint.node_runs,
                checkpoint.events,
                checkpoint.execution,
                checkpoint.final,
                checkpoint.create,
            )
            checkpoint = self.unsent.take(self.id, self.workflow_id)
        self._write(checkpoint)
        return True

    def _queue_unsent(
        self,
        node_runs: Sequence[NodeRun],
        events: Sequence[Event],
        execution: ExecutionUpdate | None,
        final: bool,
        create: Execution | None,
    ) -> None:
        self.unsent.add(node_runs, events, execution, final, create)
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_unsent)

    async def _committed(self) -> None:
        """Wait for every checkpoint handed over, then publish the events held for it."""
        await self._settle_inflight()
        self._publish_deferred()

    def _send_unsent(self) -> None:
        self._send_scheduled = False
        if self.unsent.size:
            self._write(self.unsent.take(self.id, self.workflow_id))

    def _write(self, checkpoint: Checkpoint) -> None:
        submit = self.x.submit
        if submit is not None:
            self.inflight.append(submit(checkpoint))
        else:
            self.inflight.append(self.x.checkpoints.save(checkpoint))

    async def _settle_inflight(self) -> None:
        """Wait until every checkpoint handed over is committed (in order)."""
        self._send_unsent()
        while self.inflight:
            pending, self.inflight = self.inflight, []
            for awaitable in pending:
                await awaitable

    def _publish_deferred(self) -> None:
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


class _Batch:
    """Checkpoints not handed to the store yet, kept as the one checkpoint that writes what
    they would in turn: each node's latest run (in the order of the latest writes), every
    event in order, the execution updates merged, the first one's ``create`` and the last
    one's ``final``. Adding one costs no ``Checkpoint`` object."""

    __slots__ = ("create", "events", "execution", "final", "runs", "size")

    def __init__(self) -> None:
        self.runs: dict[str, NodeRun] = {}
        self.events: list[Event] = []
        self.execution: ExecutionUpdate | None = None
        self.create: Execution | None = None
        self.final = False
        #: Checkpoints added since the last ``take``.
        self.size = 0

    def add(
        self,
        node_runs: Iterable[NodeRun],
        events: Iterable[Event],
        execution: ExecutionUpdate | None,
        final: bool,
        create: Execution | None,
    ) -> None:
        if not self.size:
            self.create = create
        runs = self.runs
        for run in node_runs:
            runs.pop(run.node_id, None)  # keep the order of the latest writes
            runs[run.node_id] = run
        self.events.extend(events)
        if execution is not None:
            before = self.execution
            if before is None:
                self.execution = execution
            else:
                # The store keeps a column an update leaves out (None): so does the merge.
                self.execution = ExecutionUpdate(
                    status=execution.status,
                    started_at=_latest(before.started_at, execution.started_at),
                    finished_at=_latest(before.finished_at, execution.finished_at),
                    error=_latest(before.error, execution.error),
                    outputs=_latest(before.outputs, execution.outputs),
                )
        self.final = final
        self.size += 1

    def take(self, execution_id: str, workflow_id: str) -> Checkpoint:
        """The checkpoint of everything added, which leaves the batch empty."""
        checkpoint = Checkpoint(
            execution_id,
            workflow_id,
            self.create,
            tuple(self.runs.values()),
            tuple(self.events),
            self.execution,
            self.final,
        )
        self.clear()
        return checkpoint

    def clear(self) -> None:
        self.runs = {}
        self.events = []
        self.execution = None
        self.create = None
        self.final = False
        self.size = 0


def _latest(before: Any, after: Any) -> Any:
    return before if after is None else after


def _check_outputs(node: Node, outputs: Any) -> None:
    if type(outputs) is not dict and not isinstance(outputs, Mapping):
        raise NodeFailure(
            f"node type {node.type!r} returned {type(outputs).__name__}, not a port mapping",
            kind="internal",
        )


async def _run_with_timeout(node: Node, node_type: NodeType, ctx: NodeContext) -> NodeOutput:
    """``node_type.run(ctx)`` within the node's ``timeout_ms`` (set)."""
    assert node.timeout_ms is not None
    try:
        async with asyncio.timeout(node.timeout_ms / 1000.0):
            return await node_type.run(ctx)
    except TimeoutError:
        raise NodeFailure(
            f"node {node.id!r} timed out after {node.timeout_ms} ms", kind="timeout"
        ) from None


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
