"""``SqlStore``: the store's one entry point, on SQLite or PostgreSQL.

Writes go through one group-commit writer thread (``writer.py``); reads run in
``asyncio.to_thread`` on a pool of read connections (SQLite's WAL lets them read while the
writer writes). Every method is async except ``open``, ``migrate`` and
``schema_is_current``, which belong to startup and the command line.

Usage::

    store = SqlStore.open()                      # SQLite in the data directory, migrated
    store = SqlStore.open("postgresql://...")    # psycopg 3
    ...
    await store.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.model.checkpoint import Checkpoint, ResumeState
from runnel.model.events import Event
from runnel.model.execution import ApprovalDecision, Execution, ExecutionStatus, NodeRun
from runnel.model.workflow import Workflow
from runnel.store import executions as executions_sql
from runnel.store import migrate as migrations
from runnel.store import queue as queue_sql
from runnel.store import workflows as workflows_sql
from runnel.store.accounts import AccountsMixin
from runnel.store.connect import create_store_engine, default_database_url, normalize_url
from runnel.store.dashboard import DashboardMixin
from runnel.store.engines import EnginesMixin
from runnel.store.errors import ConflictError, ExecutionNotFound
from runnel.store.flow8 import Flow8Mixin
from runnel.store.identities import IdentitiesMixin
from runnel.store.killswitch import KillSwitchMixin
from runnel.store.presets import PresetsMixin
from runnel.store.reading import RawReader, Reader
from runnel.store.records import WorkflowVersionInfo
from runnel.store.sharelinks import ShareLinksMixin
from runnel.store.signatures import SignaturesMixin
from runnel.store.statements import Statements
from runnel.store.userstate import UserStateMixin
from runnel.store.variables import VariablesMixin
from runnel.store.writer import GroupCommitWriter, Op, RowCountMismatch, WriterStats

__all__ = ["SqlStore"]

_T = TypeVar("_T")


class SqlStore(
    AccountsMixin,
    # Flowork: runnel.store.signatures, identities, engines, sharelinks, userstate,
    # killswitch, presets, variables, dashboard.
    SignaturesMixin,
    IdentitiesMixin,
    EnginesMixin,
    ShareLinksMixin,
    UserStateMixin,
    KillSwitchMixin,
    PresetsMixin,
    VariablesMixin,
    DashboardMixin,
    # flow8 (runnel.store.flow8: sessions, groups, kv, channels, schedules, plays).
    Flow8Mixin,
):
    """Workflows, executions, node runs, events and the queue, in one database.

    Implements the engine's ``CheckpointStore`` port (``save``). Create with ``open``.
    """

    def __init__(self, url: URL, writer_engine: Engine, reader_engine: Engine) -> None:
        self.url = url
        self._writer_engine = writer_engine
        self._reader_engine = reader_engine
        self._sql = Statements(writer_engine.dialect)
        # SQLite works on the event loop's thread (see writer.py for why); PostgreSQL on a
        # writer thread and a pool of reader threads, which wait on the network.
        self._inline = writer_engine.dialect.name == "sqlite"
        self._writer = GroupCommitWriter(writer_engine, inline=self._inline)
        self._reader: RawReader | None = None
        self._work_available: asyncio.Event | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: str | Path | None = None,
        migrate: bool = True,
    ) -> SqlStore:
        """Connect to ``url`` (default: ``sqlite:///<data dir>/runnel.db``, the data dir
        being ``data_dir``, ``$RUNNEL_DATA_DIR`` or the per-user data folder), migrate the
        schema unless ``migrate`` is False, and start the writer. Blocks while it migrates."""
        parsed = normalize_url(url if url is not None else default_database_url(data_dir))
        if migrate:
            _migrate(parsed)
        writer_engine = create_store_engine(parsed, "writer")
        reader_engine = create_store_engine(parsed, "reader")
        try:
            store = cls(parsed, writer_engine, reader_engine)
        except BaseException:
            writer_engine.dispose()
            reader_engine.dispose()
            raise
        store._writer.start()
        return store

    async def close(self) -> None:
        """Write what is queued, stop the writer and close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._writer.aclose()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._writer_engine.dispose()
        self._reader_engine.dispose()

    async def __aenter__(self) -> SqlStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def migrate(self) -> None:
        """Apply pending migrations (blocking)."""
        _migrate(self.url)

    def schema_is_current(self) -> bool:
        """True when the database is at the newest migration (blocking)."""
        return migrations.schema_is_current(self._reader_engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._writer_engine.dialect.name

    @property
    def stats(self) -> WriterStats:
        """The writer's counters: commits, jobs, failures."""
        return self._writer.stats

    # -- the CheckpointStore port -----------------------------------------------------

    async def save(self, checkpoint: Checkpoint) -> None:
        """Commit the checkpoint's node runs, events and execution update together.

        Raises ``ExecutionNotFound`` for an unknown execution and ``ConflictError`` for a
        duplicate event seq; nothing of the checkpoint is written then. A caller cancelled
        while waiting may still find its checkpoint committed.
        """
        ops = executions_sql.checkpoint_ops(self._sql, checkpoint)
        try:
            await self._write(ops)
        except RowCountMismatch:
            raise ExecutionNotFound(checkpoint.execution_id) from None
        except ConflictError:
            if not await self._read(
                lambda c: executions_sql.get_execution(c, self._sql, checkpoint.execution_id)
            ):
                raise ExecutionNotFound(checkpoint.execution_id) from None
            raise

    def submit(self, checkpoint: Checkpoint) -> asyncio.Future[None]:
        """Queue the checkpoint now (in order with everything queued before it); the
        future resolves once it is committed (``PipelinedCheckpointStore``). It fails as
        ``save`` does, except that a checkpoint for an unknown execution that only adds
        events fails with ``ConflictError`` (its foreign key) rather than
        ``ExecutionNotFound``."""
        written = self._writer.write(executions_sql.checkpoint_ops(self._sql, checkpoint))
        committed: asyncio.Future[None] = written.get_loop().create_future()
        execution_id = checkpoint.execution_id

        def settle(future: asyncio.Future[None]) -> None:
            if committed.done():
                return
            if future.cancelled():
                committed.cancel()
                return
            error = future.exception()
            if error is None:
                committed.set_result(None)
            elif isinstance(error, RowCountMismatch):
                committed.set_exception(ExecutionNotFound(execution_id))
            else:
                committed.set_exception(error)

        written.add_done_callback(settle)
        return committed

    # -- workflows --------------------------------------------------------------------

    async def save_workflow(self, workflow: Workflow, created_by: str | None = None) -> Workflow:
        """Save ``workflow`` as its next version (1 when new, or when it was deleted and is
        saved again, the next after the last); returns it with ``version`` set."""
        definition = workflows_sql.encode_definition(workflow)
        now = time.time()
        version: int = await self._call(
            lambda c: workflows_sql.save_workflow(
                c, self._sql, workflow, definition, created_by, now
            )
        )
        return dataclasses.replace(workflow, version=version)

    async def get_workflow(
        self, workflow_id: str, version: int | None = None, *, include_deleted: bool = False
    ) -> Workflow | None:
        """The given version (default: the latest); None if missing or deleted, unless
        ``include_deleted`` (for showing the history of a deleted workflow)."""
        return await self._read(
            lambda c: workflows_sql.get_workflow(
                c, self._sql, workflow_id, version, include_deleted
            )
        )

    async def list_workflows(self) -> list[Workflow]:
        """The latest version of every workflow not deleted, oldest workflow first."""
        return await self._read(lambda c: workflows_sql.list_workflows(c, self._sql))

    async def list_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """Every version of a workflow, oldest first; empty if missing or deleted."""
        return await self._read(lambda c: workflows_sql.list_versions(c, self._sql, workflow_id))

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Soft-delete: the workflow is no longer found nor executable; its versions and
        executions stay. False if it did not exist (or was already deleted)."""
        now = time.time()
        deleted: bool = await self._call(
            lambda c: workflows_sql.delete_workflow(c, self._sql, workflow_id, now)
        )
        return deleted

    async def workflow_exists(self, workflow_id: str) -> bool:
        """True if the workflow exists and is not deleted."""
        return await self._read(lambda c: workflows_sql.workflow_exists(c, self._sql, workflow_id))

    # -- executions -------------------------------------------------------------------

    async def create_execution(self, execution: Execution, *, enqueue: bool = False) -> Execution:
        """Insert a new execution (``created_at`` defaults to now); with ``enqueue`` it
        also enters the queue for ``claim``. Returns it as stored.

        Raises ``ConflictError`` if the id exists or the workflow version does not.
        """
        now = time.time()
        if execution.created_at is None:
            execution = dataclasses.replace(execution, created_at=now)
        if enqueue and execution.status is not ExecutionStatus.QUEUED:
            execution = dataclasses.replace(execution, status=ExecutionStatus.QUEUED)
        assert execution.created_at is not None
        await self._write(
            executions_sql.create_execution_ops(
                self._sql,
                execution,
                created_at=execution.created_at,
                queued_at=now if enqueue else None,
            )
        )
        if enqueue:
            self._signal_work()
        return execution

    async def get_execution(self, execution_id: str) -> Execution | None:
        return await self._read(lambda c: executions_sql.get_execution(c, self._sql, execution_id))

    async def list_executions(
        self,
        workflow_id: str | None = None,
        status: ExecutionStatus | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Execution], int]:
        """A page of executions, newest first, and how many match in all. ``since`` and
        ``until`` bound ``created_at`` (unix seconds; ``since`` inclusive, ``until`` not)."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        return await self._read(
            lambda c: executions_sql.list_executions(
                c,
                self._sql,
                workflow_id=workflow_id,
                status=status,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
        )

    async def node_runs(self, execution_id: str) -> list[NodeRun]:
        """The latest run of each node of an execution, in the order they started."""
        return await self._read(lambda c: executions_sql.list_node_runs(c, self._sql, execution_id))

    async def events(
        self, execution_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Stored events with ``seq > after_seq``, in order, at most ``limit``."""
        return await self._read(
            lambda c: executions_sql.list_events(c, self._sql, execution_id, after_seq, limit)
        )

    async def resume_state(self, execution_id: str) -> ResumeState:
        """Node runs, next event seq and start time, to continue an execution.

        Raises ``ExecutionNotFound``.
        """
        return await self._read(lambda c: executions_sql.resume_state(c, self._sql, execution_id))

    async def record_decision(
        self, execution_id: str, node_id: str, decision: ApprovalDecision
    ) -> bool:
        """Record an approval decision on a waiting node; the first one wins. False if the
        node is not waiting or already has a decision."""
        recorded: bool = await self._call(
            lambda c: executions_sql.record_decision(c, self._sql, execution_id, node_id, decision)
        )
        return recorded

    # -- the queue --------------------------------------------------------------------

    async def enqueue(self, execution_id: str) -> bool:
        """Queue a queued, waiting or paused execution for ``claim`` (a queued one keeps
        its place). False if it is missing, running or finished."""
        now = time.time()
        queued: bool = await self._call(
            lambda c: queue_sql.enqueue(c, self._sql, execution_id, now)
        )
        if queued:
            self._signal_work()
        return queued

    async def claim(self, worker_id: str, lease_seconds: float) -> str | None:
        """Take the oldest queued execution: it becomes ``running`` under a lease held by
        ``worker_id`` for ``lease_seconds``. None when the queue is empty. No execution is
        ever handed to two claimers."""
        expires = time.time() + lease_seconds
        claimed: str | None = await self._call(
            lambda c: queue_sql.claim(c, self._sql, worker_id, expires)
        )
        return claimed

    async def claim_many(self, worker_id: str, lease_seconds: float, limit: int) -> list[Execution]:
        """``claim`` up to ``limit`` executions in one statement, oldest first, each as
        stored after the claim (running, under ``worker_id``'s lease)."""
        if limit < 1:
            return []
        expires = time.time() + lease_seconds
        claimed: list[Execution] = await self._call(
            lambda c: queue_sql.claim_many(c, self._sql, worker_id, expires, limit)
        )
        return claimed

    async def release(self, execution_id: str, worker_id: str) -> bool:
        """Give back an execution ``worker_id`` stopped running: it is queued again, ahead
        of newer work, and continues from its checkpoints."""
        now = time.time()
        released: bool = await self._call(
            lambda c: queue_sql.release(c, self._sql, execution_id, worker_id, now)
        )
        if released:
            self._signal_work()
        return released

    async def requeue_orphans(self, *, any_owner: bool = False) -> int:
        """Queue again running executions whose lease expired (their worker died); with
        ``any_owner``, every running execution (one embedded process starting alone)."""
        now = time.time()
        count: int = await self._call(
            lambda c: queue_sql.requeue_orphans(c, self._sql, now, any_owner)
        )
        if count:
            self._signal_work()
        return count

    async def take_over(self, worker_id: str, lease_seconds: float) -> tuple[str, int] | None:
        """Take over the running (or paused) execution whose lease expired longest ago: it
        stays running, now under ``worker_id``'s lease. Returns (id, how many takeovers it
        has had, this one included), or None when no lease expired. Never hands one
        execution to two workers."""
        now = time.time()
        taken: tuple[str, int] | None = await self._call(
            lambda c: queue_sql.take_over(c, self._sql, worker_id, now + lease_seconds, now)
        )
        return taken

    async def renew_leases(self, worker_id: str, lease_seconds: float) -> set[str]:
        """Extend every lease ``worker_id`` holds by ``lease_seconds`` from now; returns the
        ids of the running executions it still holds (a missing one was taken over)."""
        expires = time.time() + lease_seconds
        held: set[str] = await self._call(
            lambda c: queue_sql.renew_leases(c, self._sql, worker_id, expires)
        )
        return held

    async def wake_waiting(self) -> list[str]:
        """Queue the parked executions whose timer is due or whose approval was decided;
        their ids."""
        now = time.time()
        woken: list[str] = await self._call(lambda c: queue_sql.wake_waiting(c, self._sql, now))
        if woken:
            self._signal_work()
        return woken

    async def wait_for_work(self) -> None:
        """Return once this store has enqueued something (in this process). Workers call
        it, under ``asyncio.timeout`` as a polling fallback, when ``claim`` found nothing;
        an enqueue between that claim and this call still wakes them, because the signal
        is only reset here, on return."""
        event = self._work_event()
        await event.wait()
        event.clear()

    def _work_event(self) -> asyncio.Event:
        if self._work_available is None:
            self._work_available = asyncio.Event()
        return self._work_available

    def _signal_work(self) -> None:
        self._work_event().set()

    # -- plumbing ---------------------------------------------------------------------

    async def _write(self, ops: Sequence[Op]) -> None:
        await self._writer.write(ops)

    async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T:
        result: _T = await self._writer.call(function)
        return result

    async def _read(self, function: Callable[[Reader], _T]) -> _T:
        if not self._inline:
            return await asyncio.to_thread(self._read_blocking, function)
        # Autocommit reads on the loop's thread: each statement is its own snapshot, and no
        # write can come between two of them (writes run on this thread too). Yield once
        # first, as a read through a thread would, so that a caller polling in a loop does
        # not starve the others.
        await asyncio.sleep(0)
        reader = self._reader
        if reader is None:
            reader = self._reader = RawReader(self._reader_engine.raw_connection())
        return function(reader)

    def _read_blocking(self, function: Callable[[Reader], _T]) -> _T:
        with self._reader_engine.connect() as connection:
            return function(connection)


def _migrate(url: URL) -> None:
    engine = create_store_engine(url, "admin")
    try:
        migrations.migrate(engine)
    finally:
        engine.dispose()
