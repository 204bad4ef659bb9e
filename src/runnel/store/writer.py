"""The group-commit writer: one connection, few transactions.

Callers submit a *job* and await its future. The writer takes everything queued at that
moment, writes it in one transaction and commits once, then settles all their futures. Under
load, a commit carries the writes of many executions.

Two ways to drive it:

- ``inline`` (SQLite): jobs collect during one turn of the event loop and are written at the
  end of it, on the loop's own thread. A SQLite commit costs tens of microseconds, while a
  writer thread competing with a busy event loop for the GIL measured 20 times slower per
  statement (600-850 us instead of 20-40 us at 50 concurrent executions).
- a thread (PostgreSQL): the thread blocks on the network instead of the loop; it settles
  the futures of a loop with a single ``call_soon_threadsafe``.

SQLite's WAL checkpoints (copying the log into the database file, with an fsync) do not run
inside a commit on the loop either: they took 2-20 ms there, every thousand pages, which
stalled every execution and socket of the process. Auto-checkpointing is off on the write
connection; a thread of its own runs a ``PASSIVE`` checkpoint (which never blocks the
writer) every ``CHECKPOINT_EVERY_COMMITS`` commits or ``CHECKPOINT_INTERVAL`` seconds.

A job is either rows for statements (``Op``; the rows of equal statements across jobs run
as one ``executemany``, or, on PostgreSQL, as one statement over column arrays
(``statements.Bulk``), in ``Statement.order``) or a callable run on the driver's cursor
(for writes that need an answer, e.g. ``RETURNING``; it also acts as a barrier: the rows
before it are written first). When a batch fails, it is rolled back and its jobs are
retried one per transaction, so that only the bad job fails and the others are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeAlias, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor

from runnel.store.errors import ConflictError, StoreClosed, StoreError
from runnel.store.statements import Bulk, Statement

__all__ = ["GroupCommitWriter", "Op", "RowCountMismatch", "WriterStats"]

log = logging.getLogger(__name__)

#: Bounds one transaction, so that a flood of writers still gets regular commits.
DEFAULT_MAX_BATCH: Final = 2000

#: SQLite: a WAL checkpoint after this many commits, or this many seconds (see above).
CHECKPOINT_EVERY_COMMITS: Final = 256
CHECKPOINT_INTERVAL: Final = 1.0


class Op(NamedTuple):
    """Rows to write with one statement."""

    statement: Statement
    rows: Sequence[Mapping[str, Any]]


class RowCountMismatch(StoreError):
    """A statement marked ``one_row_each`` changed fewer (or more) rows than it was given."""

    def __init__(self, statement: Statement, expected: int, actual: int) -> None:
        super().__init__(f"{statement.name}: expected {expected} rows changed, got {actual}")
        self.statement = statement


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started."""

    #: Transactions committed (a failed batch's one-by-one retries count one each).
    commits: int
    #: Jobs written successfully.
    jobs: int
    #: Jobs that failed.
    failed_jobs: int
    #: Batches that failed as a whole and were retried job by job.
    split_batches: int


class _Job:
    __slots__ = ("call", "future", "loop", "ops")

    def __init__(
        self,
        ops: Sequence[Op],
        call: Callable[[DBAPICursor], Any] | None,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.ops = ops
        self.call = call
        self.loop = loop
        self.future = future


_STOP: Final = object()

#: (future, result, error): how one job ended.
_Outcome: TypeAlias = tuple[asyncio.Future[Any], Any, BaseException | None]


class GroupCommitWriter:
    """Owns the write connection. Start with ``start()``, stop with ``stop()``.

    It drives the DBAPI connection directly (cursor, ``executemany``, commit): SQLAlchemy's
    own transaction handling costs about 80 us per transaction here, more than SQLite's
    whole commit. ``engine`` must not begin transactions by itself on connect (see
    ``connect.create_store_engine``'s ``writer`` role).
    """

    def __init__(
        self, engine: Engine, *, max_batch: int = DEFAULT_MAX_BATCH, inline: bool = False
    ) -> None:
        self._engine = engine
        self._inline = inline
        self._pending: list[_Job] = []
        self._flush_scheduled = False
        self._connection: Connection | None = None
        self._dialect = engine.dialect
        # SQLite: take the write lock at BEGIN, as a deferred transaction could fail to
        # upgrade later. PostgreSQL's driver begins implicitly at the first statement.
        self._begin = "BEGIN IMMEDIATE" if engine.dialect.name == "sqlite" else None
        # psycopg: a group's statements go in one round trip (``_flush``), where its libpq
        # has pipeline mode (14+; the binary wheels bundle one).
        self._pipelined = engine.dialect.name == "postgresql" and _pipeline_supported()
        self._integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        # Guards ``_closed`` together with the queue, so no job slips in behind _STOP.
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="runnel-store-writer", daemon=True)
        self._commits = 0
        self._jobs = 0
        self._failed_jobs = 0
        self._split_batches = 0
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._checkpointer = (
            _WalCheckpointer(database) if inline and database and database != ":memory:" else None
        )
        self._checkpointed_at = 0

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            commits=self._commits,
            jobs=self._jobs,
            failed_jobs=self._failed_jobs,
            split_batches=self._split_batches,
        )

    @property
    def inline(self) -> bool:
        return self._inline

    def start(self) -> None:
        if not self._inline:
            self._thread.start()
        elif self._checkpointer is not None:
            self._checkpointer.start()

    async def aclose(self) -> None:
        """Write what is queued and release the connection; idempotent."""
        if not self._inline:
            await asyncio.to_thread(self.stop)
            return
        self._closed = True
        self._flush_inline()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        """Write what is queued, then end the thread. Blocking; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join()

    def write(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Queue rows; the future resolves once they are committed."""
        return self._submit(ops, None)

    def call(self, function: Callable[[DBAPICursor], Any]) -> asyncio.Future[Any]:
        """Queue ``function(cursor)`` to run inside a group transaction; the future
        resolves to its result once committed. It may run twice (after a failed batch's
        rollback), so it must do nothing but database work. The cursor is the driver's:
        statements from ``Statements``, parameters as dicts, ``fetchall`` the results."""
        return self._submit((), function)

    def _submit(
        self, ops: Sequence[Op], call: Callable[[DBAPICursor], Any] | None
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._inline:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._pending.append(_Job(ops, call, loop, future))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                # After the callbacks ready now: everything queued this turn shares a commit.
                loop.call_soon(self._flush_inline)
            return future
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._queue.put(_Job(ops, call, loop, future))
        return future

    # -- inline: at the end of a loop turn ----------------------------------------------

    def _flush_inline(self) -> None:
        self._flush_scheduled = False
        while self._pending:
            jobs = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                if self._connection is None or self._connection.invalidated:
                    if self._connection is not None:
                        self._connection.close()
                    self._connection = self._engine.connect()
                    if self._checkpointer is not None:
                        self._connection.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
                self._process(self._connection, jobs)
                if (
                    self._checkpointer is not None
                    and self._commits - self._checkpointed_at >= CHECKPOINT_EVERY_COMMITS
                ):
                    self._checkpointed_at = self._commits
                    self._checkpointer.nudge()
            except Exception as error:
                log.exception("store writer: batch of %d jobs failed", len(jobs))
                self._failed_jobs += len(jobs)
                self._settle(jobs, [(job.future, None, error) for job in jobs])
                if self._connection is not None:
                    self._connection.invalidate()

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        connection: Connection | None = None
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                assert isinstance(first, _Job)
                jobs = [first]
                while len(jobs) < self._max_batch:
                    job = self._next_nowait()
                    if job is None:
                        break
                    if job is _STOP:
                        stopping = True
                        break
                    assert isinstance(job, _Job)
                    jobs.append(job)
                try:
                    if connection is None or connection.invalidated:
                        if connection is not None:
                            connection.close()
                        connection = self._engine.connect()
                    self._process(connection, jobs)
                except Exception as error:
                    # Never let the thread die with callers waiting: fail this batch and
                    # start the next one on a fresh connection.
                    log.exception("store writer: batch of %d jobs failed", len(jobs))
                    self._failed_jobs += len(jobs)
                    self._settle(jobs, [(job.future, None, error) for job in jobs])
                    if connection is not None:
                        connection.invalidate()
        finally:
            if connection is not None:
                connection.close()

    def _next_nowait(self) -> _Job | object | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _process(self, connection: Connection, jobs: list[_Job]) -> None:
        outcomes: list[_Outcome]
        try:
            results = self._transaction(connection, jobs)
            self._jobs += len(jobs)
            outcomes = [
                (job.future, result, None) for job, result in zip(jobs, results, strict=True)
            ]
        except Exception as batch_error:
            if len(jobs) == 1:
                self._failed_jobs += 1
                outcomes = [(jobs[0].future, None, self._translate(batch_error))]
            else:
                # Someone's write is bad (or the commit failed): find out whose, one by one.
                self._split_batches += 1
                outcomes = []
                for job in jobs:
                    try:
                        (result,) = self._transaction(connection, [job])
                        self._jobs += 1
                        outcomes.append((job.future, result, None))
                    except Exception as job_error:
                        self._failed_jobs += 1
                        outcomes.append((job.future, None, self._translate(job_error)))
        self._settle(jobs, outcomes)

    def _transaction(self, connection: Connection, jobs: list[_Job]) -> list[Any]:
        """Run ``jobs`` in one transaction and commit; one result per job."""
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            if self._begin is not None:
                cursor.execute(self._begin)
            results = _apply(cursor, jobs, self._pipelined)
            dbapi_connection.commit()
        except BaseException as error:
            self._rollback(connection, dbapi_connection, cursor, error)
            raise
        finally:
            cursor.close()
        self._commits += 1
        return results

    def _rollback(
        self,
        connection: Connection,
        dbapi_connection: DBAPIConnection,
        cursor: DBAPICursor,
        error: BaseException,
    ) -> None:
        if isinstance(error, self._dbapi_error) and self._dialect.is_disconnect(
            cast(Any, error), dbapi_connection, cursor
        ):
            # The server or network went away: replace the connection for the next batch.
            log.warning("store writer: connection lost (%s); reconnecting", error)
            connection.invalidate()
            return
        try:
            dbapi_connection.rollback()
        except Exception:
            log.exception("store writer: rollback failed; reconnecting")
            connection.invalidate()

    def _translate(self, error: Exception) -> Exception:
        if isinstance(error, self._integrity_error):
            conflict = ConflictError(str(error))
            conflict.__cause__ = error
            return conflict
        return error

    def _settle(self, jobs: list[_Job], outcomes: list[_Outcome]) -> None:
        if self._inline:
            _resolve(outcomes)
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append(outcome)
        for loop, loop_outcomes in by_loop.items():
            # RuntimeError: the caller's loop has closed, nobody is left waiting for these.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, loop_outcomes)


class _WalCheckpointer:
    """Runs SQLite WAL checkpoints on a thread of its own (see the module docstring)."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="runnel-store-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Blocking; the writer's own connection checkpoints when it closes."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait(CHECKPOINT_INTERVAL)
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    if connection is None:
                        connection = sqlite3.connect(
                            self._database, isolation_level=None, check_same_thread=False
                        )
                        connection.execute("PRAGMA busy_timeout = 1000")
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("store: WAL checkpoint failed; retrying later", exc_info=True)
                    if connection is not None:
                        connection.close()
                        connection = None
        finally:
            if connection is not None:
                connection.close()


def _pipeline_supported() -> bool:
    import psycopg  # only with PostgreSQL: an optional dependency

    return bool(psycopg.Pipeline.is_supported())


def _apply(cursor: DBAPICursor, jobs: list[_Job], pipelined: bool) -> list[Any]:
    """Run ``jobs`` on ``cursor`` (inside a transaction); one result per job."""
    results: list[Any] = []
    pending: dict[Statement, list[Mapping[str, Any]]] = {}
    for job in jobs:
        if job.call is not None:
            _flush(cursor, pending, pipelined)
            results.append(job.call(cursor))
            continue
        for op in job.ops:
            rows = pending.get(op.statement)
            if rows is None:
                pending[op.statement] = list(op.rows)
            else:
                rows.extend(op.rows)
        results.append(None)
    _flush(cursor, pending, pipelined)
    return results


def _flush(
    cursor: DBAPICursor, pending: dict[Statement, list[Mapping[str, Any]]], pipelined: bool
) -> None:
    """Write the pending rows, statement by statement. ``pipelined`` (psycopg): send them
    all in one round trip (with the transaction's BEGIN when they open it), then check the
    row counts: a writer thread waits for the GIL after every round trip, up to the
    interpreter's switch interval (5 ms) while the event loop is busy."""
    if not pending:
        return
    if not pipelined:
        for statement in sorted(pending, key=_order):
            rows = _execute(cursor, statement, pending[statement])
            # Both drivers report the total over all rows of an executemany.
            if statement.one_row_each and cursor.rowcount != len(rows):
                raise RowCountMismatch(statement, len(rows), cursor.rowcount)
        pending.clear()
        return
    connection = cast(Any, cursor).connection
    checks: list[tuple[DBAPICursor, Statement, int]] = []
    with connection.pipeline():
        for statement in sorted(pending, key=_order):
            # A row count is known once the pipeline syncs, per cursor: one cursor for
            # each statement that needs its own.
            target = connection.cursor() if statement.one_row_each else cursor
            rows = _execute(target, statement, pending[statement])
            if statement.one_row_each:
                checks.append((target, statement, len(rows)))
    pending.clear()
    for target, statement, expected in checks:
        count = target.rowcount
        target.close()
        if count != expected:
            raise RowCountMismatch(statement, expected, count)


def _execute(
    cursor: DBAPICursor, statement: Statement, rows: list[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Run ``statement`` for ``rows``; the rows its row count answers for (merged ones
    count once)."""
    bulk = statement.bulk
    values = statement.values
    if values is not None:
        # SQLite: the rows as tuples for numbered parameters (see ``Statement.values``).
        assert statement.positional_sql is not None
        if len(rows) == 1:
            cursor.execute(statement.positional_sql, values(rows[0]))
        else:
            cursor.executemany(statement.positional_sql, list(map(values, rows)))
    elif len(rows) == 1:
        cursor.execute(statement.sql, rows[0])
    elif bulk is not None:
        # One statement over column arrays (PostgreSQL); its row count is the total.
        if bulk.key:
            rows = _merged(rows, bulk)
        cursor.execute(bulk.sql, _columns(rows, bulk))
    else:
        cursor.executemany(statement.sql, rows)
    return rows


def _merged(rows: list[Mapping[str, Any]], bulk: Bulk) -> list[Mapping[str, Any]]:
    """``rows`` with those of equal ``bulk.key`` merged into one row with the effect of
    all of them in order (see ``Bulk.key``). Usually there are none: the rows come back."""
    key = bulk.key
    if len(key) == 1:
        (name,) = key
        keys: list[Any] = [row[name] for row in rows]
    else:
        keys = [tuple(row[name] for name in key) for row in rows]
    if len(set(keys)) == len(keys):
        return rows
    merged: dict[Any, Mapping[str, Any]] = {}
    for row_key, row in zip(keys, rows, strict=True):
        earlier = merged.get(row_key)
        if earlier is None:
            merged[row_key] = row
            continue
        combined = dict(row)
        for name in bulk.coalesce:
            if combined[name] is None:
                combined[name] = earlier[name]
        for name in bulk.greatest:
            combined[name] = max(combined[name], earlier[name])
        merged[row_key] = combined
    return list(merged.values())


def _columns(rows: Sequence[Mapping[str, Any]], bulk: Bulk) -> list[list[Any]]:
    """The rows as one list per column, in ``bulk.columns`` order."""
    columns: list[list[Any]] = []
    for name in bulk.columns:
        values = [row[name] for row in rows]
        if name in bulk.floats:
            values = [None if value is None else float(value) for value in values]
        columns.append(values)
    return columns


def _order(statement: Statement) -> int:
    return statement.order


def _resolve(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the caller was cancelled; its write happened anyway
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
