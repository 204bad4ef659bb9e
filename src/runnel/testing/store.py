"""In-memory implementations of the engine's two ports, for executor unit tests.

``MemoryCheckpointStore`` keeps what a real store would (node runs by execution and node,
events in order, execution updates) and enforces what a real store enforces: an event seq
is never stored twice for one execution. It can also fail or slow down on demand.
``RecordingEventSink`` records published events and lets a test wait for one.

Both are used from one event loop, like the executor itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from runnel.model.checkpoint import Checkpoint, ExecutionUpdate, ResumeState
from runnel.model.events import Event, EventType
from runnel.model.execution import ApprovalDecision, ExecutionStatus, NodeRun, NodeStatus

__all__ = ["MemoryCheckpointStore", "RecordingEventSink"]


class MemoryCheckpointStore:
    """A ``CheckpointStore`` that keeps everything in dicts and lists."""

    def __init__(self) -> None:
        #: Every checkpoint saved, in order.
        self.checkpoints: list[Checkpoint] = []
        #: The latest run of each node: (execution id, node id) -> run.
        self.node_runs: dict[tuple[str, str], NodeRun] = {}
        #: Every event saved, in the order saved (all executions).
        self.events: list[Event] = []
        #: Every execution update, in order: (execution id, update).
        self.execution_updates: list[tuple[str, ExecutionUpdate]] = []
        #: Raised by the next ``save`` (then cleared); nothing of that checkpoint is kept.
        self.fail_next: BaseException | None = None
        #: Seconds each ``save`` sleeps before storing, to simulate a slow database.
        self.delay: float = 0.0
        self._seqs: dict[str, set[int]] = {}
        self._statuses: dict[str, ExecutionStatus] = {}
        self._started_at: dict[str, float] = {}

    async def save(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint whole, or (on a duplicate event seq) nothing of it."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        seen = self._seqs.setdefault(checkpoint.execution_id, set())
        new_seqs = [event.seq for event in checkpoint.events]
        if len(set(new_seqs)) != len(new_seqs) or seen.intersection(new_seqs):
            raise ValueError(
                f"execution {checkpoint.execution_id!r}: event seq stored twice: {new_seqs}"
            )
        seen.update(new_seqs)
        self.checkpoints.append(checkpoint)
        for run in checkpoint.node_runs:
            key = (run.execution_id, run.node_id)
            previous = self.node_runs.get(key)
            # Like the SQL store: a checkpoint never erases a recorded decision.
            if run.decision is None and previous is not None and previous.decision is not None:
                run = replace(run, decision=previous.decision)
            self.node_runs[key] = run
        self.events.extend(checkpoint.events)
        if checkpoint.execution is not None:
            update = checkpoint.execution
            self.execution_updates.append((checkpoint.execution_id, update))
            self._statuses[checkpoint.execution_id] = update.status
            if update.started_at is not None:
                self._started_at[checkpoint.execution_id] = update.started_at

    # -- what tests look at -----------------------------------------------------------

    def events_of(self, execution_id: str) -> list[Event]:
        """The events of one execution, in seq order."""
        return sorted(
            (event for event in self.events if event.execution_id == execution_id),
            key=lambda event: event.seq,
        )

    def event_types(self, execution_id: str) -> list[EventType]:
        return [event.type for event in self.events_of(execution_id)]

    def node_run(self, execution_id: str, node_id: str) -> NodeRun | None:
        return self.node_runs.get((execution_id, node_id))

    def runs_of(self, execution_id: str) -> dict[str, NodeRun]:
        """Node id -> latest run, for one execution."""
        return {
            node_id: run
            for (run_execution, node_id), run in self.node_runs.items()
            if run_execution == execution_id
        }

    def status(self, execution_id: str) -> ExecutionStatus | None:
        """The status of the latest execution update, if any."""
        return self._statuses.get(execution_id)

    def updates_of(self, execution_id: str) -> list[ExecutionUpdate]:
        return [update for eid, update in self.execution_updates if eid == execution_id]

    # -- what a real store offers the services ----------------------------------------

    def resume_state(self, execution_id: str) -> ResumeState:
        """Like ``SqlStore.resume_state``: node runs, next seq and start time."""
        seqs = self._seqs.get(execution_id, set())
        return ResumeState(
            node_runs=self.runs_of(execution_id),
            next_seq=max(seqs, default=0) + 1,
            started_at=self._started_at.get(execution_id),
        )

    def record_decision(self, execution_id: str, node_id: str, decision: ApprovalDecision) -> bool:
        """Like ``SqlStore.record_decision``: only on a waiting, undecided node."""
        run = self.node_runs.get((execution_id, node_id))
        if run is None or run.status is not NodeStatus.WAITING or run.decision is not None:
            return False
        self.node_runs[(execution_id, node_id)] = replace(run, decision=decision)
        return True


class RecordingEventSink:
    """An ``EventSink`` that records every event and lets tests wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []

    def publish(self, event: Event) -> None:
        """Record ``event`` and wake the waiters it matches. Never raises."""
        self.events.append(event)
        still_waiting: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                matched = predicate(event)
            except Exception as error:  # a broken predicate fails its test, not the engine
                future.set_exception(error)
                continue
            if matched:
                future.set_result(event)
            else:
                still_waiting.append((predicate, future))
        self._waiters = still_waiting

    def types(self, execution_id: str | None = None) -> list[EventType]:
        return [
            event.type
            for event in self.events
            if execution_id is None or event.execution_id == execution_id
        ]

    def of_type(self, event_type: EventType) -> list[Event]:
        return [event for event in self.events if event.type is event_type]

    async def wait_for(
        self, match: EventType | Callable[[Event], bool], *, within: float = 5.0
    ) -> Event:
        """The first event (already published or to come) matching ``match``: an event
        type or a predicate. Raises ``TimeoutError`` after ``within`` seconds."""
        predicate = _predicate(match)
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(within):
            return await future


def _predicate(match: EventType | Callable[[Event], bool]) -> Callable[[Event], bool]:
    if isinstance(match, EventType):
        return lambda event: event.type is match
    return match
