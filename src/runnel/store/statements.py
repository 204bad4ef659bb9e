"""Every SQL statement of the store, written out, and compiled once per dialect.

The texts use ``:name`` parameters and SQL that SQLite (3.35+) and PostgreSQL both speak
(``ON CONFLICT``, ``RETURNING``); where they differ, a ``{placeholder}`` is filled per
dialect. ``Statements(dialect)`` renders them in the driver's own parameter style
(``:name`` for sqlite3, ``%(name)s`` for psycopg), so the hot path hands plain dicts to the
driver's ``executemany`` with no per-call compilation.

On PostgreSQL the checkpoint statements also have a ``Bulk`` form: the rows of a whole group
commit as one statement over ``unnest`` of one binary array per column. psycopg's
``executemany`` costs about 15 us of Python per row (a bind and an execute each, in pipeline
mode); the arrays cost about a fifth of that, and the server plans one statement, not one per
row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import Dialect, text

__all__ = ["Bulk", "Statement", "Statements"]


@dataclass(frozen=True, slots=True)
class Bulk:
    """A statement's form for many rows at once (PostgreSQL): ``sql`` takes one binary
    array (``%b``) per column of ``columns``, in that order."""

    sql: str
    columns: tuple[str, ...]
    #: Columns of ``double precision``: their values are made floats (an array holds one
    #: type, and a clock may give ints).
    floats: frozenset[str] = frozenset()
    #: The rows of one statement must differ in these columns (an upsert cannot change a
    #: row twice; an ``UPDATE ... FROM`` would apply only one of two rows): rows of equal
    #: key are merged first into the one row whose effect is theirs, applied in order (the
    #: later row's values, except ``coalesce`` and ``greatest`` columns). Empty: no merging
    #: (a duplicate insert fails either way).
    key: tuple[str, ...] = ()
    #: Columns the statement leaves alone when NULL (``COALESCE(new, old)``).
    coalesce: frozenset[str] = frozenset()
    #: Columns that only grow (``GREATEST(new, old)``).
    greatest: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One statement in the driver's dialect. Compared by identity (a dict key)."""

    name: str
    sql: str
    #: The group-commit writer runs the rows of many jobs per statement, in this order, so
    #: that a row is inserted before rows that refer to it are written.
    order: int = 0
    #: Each row must change exactly one row; otherwise the job fails (an unknown id).
    one_row_each: bool = False
    #: The many-rows form, where the dialect has one.
    bulk: Bulk | None = None
    #: SQLite, checkpoint statements: ``sql`` with numbered parameters (``?1``) instead of
    #: names, and what makes a row's values for it. sqlite3 binds a dict by looking up each
    #: parameter's name, about 0.1 us per value; a tuple binds by position.
    positional_sql: str | None = None
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None


# -- writes (through the group-commit writer) ------------------------------------------

#: The columns ``rows.execution_from_row`` reads, in the order ``SELECT_EXECUTION`` has them.
_EXECUTION_COLUMNS: Final = """
    id, workflow_id, workflow_version, status, mode, trigger, inputs, outputs, error,
    parent_id, attempt, created_at, started_at, finished_at"""

INSERT_EXECUTION: Final = """
INSERT INTO executions (
    id, workflow_id, workflow_version, status, mode, trigger, inputs, outputs, error,
    parent_id, attempt, created_at, started_at, finished_at, queued_at
) VALUES (
    :id, :workflow_id, :workflow_version, :status, :mode, :trigger, :inputs, :outputs, :error,
    :parent_id, :attempt, :created_at, :started_at, :finished_at, :queued_at
)
"""

# A node run row is the node's latest state: each checkpoint replaces it whole, except for
# an approval decision, which only ``record_decision`` writes and a checkpoint never erases.
_NODE_RUN_CONFLICT: Final = """
ON CONFLICT (execution_id, node_id) DO UPDATE SET
    status = excluded.status,
    attempt = excluded.attempt,
    inputs = excluded.inputs,
    outputs = excluded.outputs,
    error = excluded.error,
    wait = excluded.wait,
    decision = COALESCE(excluded.decision, node_runs.decision),
    started_at = excluded.started_at,
    finished_at = excluded.finished_at
"""

UPSERT_NODE_RUN: Final = (
    """
INSERT INTO node_runs (
    execution_id, node_id, status, attempt, inputs, outputs, error, wait, decision,
    started_at, finished_at
) VALUES (
    :execution_id, :node_id, :status, :attempt, :inputs, :outputs, :error, :wait, :decision,
    :started_at, :finished_at
)
"""
    + _NODE_RUN_CONFLICT
)

INSERT_EVENT: Final = """
INSERT INTO execution_events (execution_id, seq, type, node_id, timestamp, data)
VALUES (:execution_id, :seq, :type, :node_id, :timestamp, :data)
"""

# Fields an update leaves out (NULL) keep their stored value; next_seq only grows.
UPDATE_EXECUTION: Final = """
UPDATE executions SET
    status = :status,
    started_at = COALESCE(:started_at, started_at),
    finished_at = COALESCE(:finished_at, finished_at),
    error = COALESCE(:error, error),
    outputs = COALESCE(:outputs, outputs),
    next_seq = CASE WHEN :next_seq > next_seq THEN :next_seq ELSE next_seq END
WHERE id = :id
"""

# (A checkpoint that leaves the status alone does not touch the execution row: resuming
# takes the larger of next_seq and the highest stored event seq + 1.)

# -- the same, many rows per statement (PostgreSQL; see ``Bulk``) --------------------------

_NODE_RUN_COLUMNS: Final = (
    "execution_id",
    "node_id",
    "status",
    "attempt",
    "inputs",
    "outputs",
    "error",
    "wait",
    "decision",
    "started_at",
    "finished_at",
)

BULK_UPSERT_NODE_RUN: Final = (
    """
INSERT INTO node_runs (
    execution_id, node_id, status, attempt, inputs, outputs, error, wait, decision,
    started_at, finished_at
)
SELECT * FROM unnest(
    %b::text[], %b::text[], %b::text[], %b::integer[], %b::text[], %b::text[], %b::text[],
    %b::text[], %b::text[], %b::double precision[], %b::double precision[]
)
"""
    + _NODE_RUN_CONFLICT
)

_EVENT_COLUMNS: Final = ("execution_id", "seq", "type", "node_id", "timestamp", "data")

BULK_INSERT_EVENT: Final = """
INSERT INTO execution_events (execution_id, seq, type, node_id, timestamp, data)
SELECT * FROM unnest(
    %b::text[], %b::integer[], %b::text[], %b::text[], %b::double precision[], %b::text[]
)
"""

_EXECUTION_UPDATE_COLUMNS: Final = (
    "id",
    "status",
    "started_at",
    "finished_at",
    "error",
    "outputs",
    "next_seq",
)

BULK_UPDATE_EXECUTION: Final = """
UPDATE executions AS x SET
    status = v.status,
    started_at = COALESCE(v.started_at, x.started_at),
    finished_at = COALESCE(v.finished_at, x.finished_at),
    error = COALESCE(v.error, x.error),
    outputs = COALESCE(v.outputs, x.outputs),
    next_seq = GREATEST(v.next_seq, x.next_seq)
FROM unnest(
    %b::text[], %b::text[], %b::double precision[], %b::double precision[], %b::text[],
    %b::text[], %b::integer[]
) AS v(id, status, started_at, finished_at, error, outputs, next_seq)
WHERE x.id = v.id
"""

# A run whose workflow keeps no history of it (``settings.save_history``): its rows go, the
# children first. Ordered after every other write of a group commit, so that rows the same
# batch wrote for the execution are deleted too.
DELETE_EXECUTION_EVENTS: Final = "DELETE FROM execution_events WHERE execution_id = :id"
DELETE_EXECUTION_NODE_RUNS: Final = "DELETE FROM node_runs WHERE execution_id = :id"
DELETE_EXECUTION: Final = "DELETE FROM executions WHERE id = :id"

# One statement both creates a workflow and bumps the version of an existing one, so that
# concurrent saves (even from other processes) serialise on the row and never share a
# version. Saving a deleted workflow brings it back with the next version.
UPSERT_WORKFLOW: Final = """
INSERT INTO workflows (
    id, name, description, owner, group_id, latest_version, deleted_at, created_at, updated_at
) VALUES (
    :id, :name, :description, :owner, :group_id, 1, NULL, :now, :now
)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name,
    description = excluded.description,
    owner = excluded.owner,
    group_id = excluded.group_id,
    latest_version = workflows.latest_version + 1,
    deleted_at = NULL,
    updated_at = excluded.updated_at
RETURNING latest_version
"""

INSERT_WORKFLOW_VERSION: Final = """
INSERT INTO workflow_versions (workflow_id, version, definition, created_at, created_by)
VALUES (:workflow_id, :version, :definition, :created_at, :created_by)
"""

DELETE_WORKFLOW: Final = """
UPDATE workflows SET deleted_at = :now, updated_at = :now
WHERE id = :id AND deleted_at IS NULL
"""

# First decision wins: a second approver gets False (a conflict), and a node that is no
# longer waiting takes none.
RECORD_DECISION: Final = """
UPDATE node_runs SET decision = :decision
WHERE execution_id = :execution_id AND node_id = :node_id
    AND status = 'waiting' AND decision IS NULL
"""

# A running execution belongs to the worker holding its lease, and a finished one is done;
# only these statuses may (re-)enter the queue. A queued one keeps its place.
ENQUEUE: Final = """
UPDATE executions SET
    status = 'queued',
    queued_at = COALESCE(queued_at, :now),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = :id AND status IN ('queued', 'waiting', 'paused')
"""

# Oldest queued first. On PostgreSQL, SKIP LOCKED lets concurrent claimers pass over the
# row another one is taking instead of queueing behind its lock.
CLAIM: Final = """
UPDATE executions SET
    status = 'running',
    queued_at = NULL,
    lease_owner = :worker_id,
    lease_expires_at = :lease_expires_at
WHERE id = (
    SELECT id FROM executions
    WHERE status = 'queued' AND queued_at IS NOT NULL
    ORDER BY queued_at, id
    LIMIT 1
    {skip_locked}
)
RETURNING id
"""

# ``CLAIM`` for a worker with many free slots: up to ``:limit`` executions in one round trip,
# each returned whole, so that the worker need not read it back before running it.
CLAIM_MANY: Final = f"""
UPDATE executions SET
    status = 'running',
    queued_at = NULL,
    lease_owner = :worker_id,
    lease_expires_at = :lease_expires_at
WHERE id IN (
    SELECT id FROM executions
    WHERE status = 'queued' AND queued_at IS NOT NULL
    ORDER BY queued_at, id
    LIMIT :limit
    {{skip_locked}}
)
RETURNING {_EXECUTION_COLUMNS}
"""

# A worker gives back an execution it stopped running (shutdown): it re-enters the queue
# ahead of newer work, keeping its checkpoints.
RELEASE: Final = """
UPDATE executions SET
    status = 'queued',
    queued_at = COALESCE(created_at, :now),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = :id AND status = 'running' AND lease_owner = :worker_id
"""

# Running executions whose lease ran out (their worker died) or that belong to no live
# worker (``:any_owner``: the one embedded process starting on its own file).
REQUEUE_ORPHANS: Final = """
UPDATE executions SET
    status = 'queued',
    queued_at = COALESCE(created_at, :now),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE status = 'running' AND (:any_owner OR lease_expires_at < :now)
"""

# -- leases of the multi-node workers (runnel.worker.cluster) ----------------------------

# A running (or paused) execution whose lease ran out belongs to a worker that died or hung:
# another worker takes it over where it is, counting the takeover so that an execution that
# kills every worker it meets is failed after a limit instead of looping.
TAKE_OVER: Final = """
UPDATE executions SET
    lease_owner = :worker_id,
    lease_expires_at = :lease_expires_at,
    takeovers = takeovers + 1
WHERE id = (
    SELECT id FROM executions
    WHERE status IN ('running', 'paused') AND lease_expires_at < :now
    ORDER BY lease_expires_at, id
    LIMIT 1
    {skip_locked}
)
RETURNING id, takeovers
"""

# The heartbeat: one statement renews every lease a worker holds, and tells it which ones it
# still holds (one it lost was taken over while the worker hung).
RENEW_LEASES: Final = """
UPDATE executions SET lease_expires_at = :lease_expires_at
WHERE lease_owner = :worker_id AND status IN ('running', 'paused')
RETURNING id
"""

# Parked executions whose wait is over: a timer that is due, or an approval that was decided
# (normally enqueued by the approver; this also covers a process that died in between).
WAKE_WAITING: Final = """
UPDATE executions SET
    status = 'queued',
    queued_at = :now,
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE status = 'waiting' AND id IN (
    SELECT n.execution_id
    FROM executions AS x
    JOIN node_runs AS n ON n.execution_id = x.id
    WHERE x.status = 'waiting' AND n.status = 'waiting'
        AND (n.decision IS NOT NULL OR {due_at} <= :now)
)
RETURNING id
"""

#: ``WAKE_WAITING``'s timer: the ``due_at`` of a node run's ``wait`` JSON, per dialect.
DUE_AT: Final = {
    "sqlite": "json_extract(n.wait, '$.due_at')",
    "postgresql": "CAST(CAST(n.wait AS jsonb) ->> 'due_at' AS double precision)",
}

# -- reads -----------------------------------------------------------------------------

# ``:include_deleted`` lets history views show the workflow an old execution ran.
SELECT_LATEST_WORKFLOW: Final = """
SELECT v.version, v.definition
FROM workflows AS w
JOIN workflow_versions AS v ON v.workflow_id = w.id AND v.version = w.latest_version
WHERE w.id = :id AND (:include_deleted OR w.deleted_at IS NULL)
"""

SELECT_WORKFLOW_VERSION: Final = """
SELECT v.version, v.definition
FROM workflows AS w
JOIN workflow_versions AS v ON v.workflow_id = w.id
WHERE w.id = :id AND v.version = :version AND (:include_deleted OR w.deleted_at IS NULL)
"""

LIST_WORKFLOWS: Final = """
SELECT v.version, v.definition
FROM workflows AS w
JOIN workflow_versions AS v ON v.workflow_id = w.id AND v.version = w.latest_version
WHERE w.deleted_at IS NULL
ORDER BY w.created_at, w.id
"""

LIST_VERSIONS: Final = """
SELECT v.workflow_id, v.version, v.created_at, v.created_by
FROM workflows AS w
JOIN workflow_versions AS v ON v.workflow_id = w.id
WHERE w.id = :id AND w.deleted_at IS NULL
ORDER BY v.version
"""

WORKFLOW_EXISTS: Final = """
SELECT 1 FROM workflows WHERE id = :id AND deleted_at IS NULL
"""

SELECT_EXECUTION: Final = f"""
SELECT {_EXECUTION_COLUMNS}
FROM executions
WHERE id = :id
"""

#: ``list_executions`` filters: each one present adds its clause.
EXECUTION_FILTERS: Final = {
    "workflow_id": "workflow_id = :workflow_id",
    "status": "status = :status",
    "since": "created_at >= :since",
    "until": "created_at < :until",
}

LIST_EXECUTIONS: Final = f"""
SELECT {_EXECUTION_COLUMNS}
FROM executions
{{where}}
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset
"""

COUNT_EXECUTIONS: Final = """
SELECT COUNT(*) FROM executions
{where}
"""

# Nodes in the order they started; those that never started last.
SELECT_NODE_RUNS: Final = """
SELECT execution_id, node_id, status, attempt, inputs, outputs, error, wait, decision,
    started_at, finished_at
FROM node_runs
WHERE execution_id = :execution_id
ORDER BY started_at IS NULL, started_at, node_id
"""

# The event's workflow id is the execution's; it is not repeated on every event row.
SELECT_EVENTS: Final = """
SELECT e.seq, e.type, e.node_id, e.timestamp, e.data, x.workflow_id
FROM execution_events AS e
JOIN executions AS x ON x.id = e.execution_id
WHERE e.execution_id = :execution_id AND e.seq > :after_seq
ORDER BY e.seq
{limit}
"""

SELECT_RESUME: Final = """
SELECT x.started_at, x.next_seq,
    (SELECT MAX(e.seq) FROM execution_events AS e WHERE e.execution_id = x.id) AS max_seq
FROM executions AS x
WHERE x.id = :id
"""


class Statements:
    """All statements above, rendered for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        postgres = dialect.name == "postgresql"
        # Write order within one group commit: parents before children.
        self.upsert_workflow = self._compile("upsert_workflow", UPSERT_WORKFLOW)
        self.insert_workflow_version = self._compile(
            "insert_workflow_version", INSERT_WORKFLOW_VERSION
        )
        self.delete_workflow = self._compile("delete_workflow", DELETE_WORKFLOW)
        self.insert_execution = self._compile(
            "insert_execution", INSERT_EXECUTION, order=10, positional=not postgres
        )
        self.upsert_node_run = self._compile(
            "upsert_node_run",
            UPSERT_NODE_RUN,
            order=20,
            positional=not postgres,
            bulk=Bulk(
                BULK_UPSERT_NODE_RUN.strip(),
                _NODE_RUN_COLUMNS,
                floats=frozenset({"started_at", "finished_at"}),
                key=("execution_id", "node_id"),
                coalesce=frozenset({"decision"}),
            )
            if postgres
            else None,
        )
        self.insert_event = self._compile(
            "insert_event",
            INSERT_EVENT,
            order=30,
            positional=not postgres,
            bulk=Bulk(BULK_INSERT_EVENT.strip(), _EVENT_COLUMNS, floats=frozenset({"timestamp"}))
            if postgres
            else None,
        )
        self.update_execution = self._compile(
            "update_execution",
            UPDATE_EXECUTION,
            order=40,
            one_row_each=True,
            positional=not postgres,
            bulk=Bulk(
                BULK_UPDATE_EXECUTION.strip(),
                _EXECUTION_UPDATE_COLUMNS,
                floats=frozenset({"started_at", "finished_at"}),
                key=("id",),
                coalesce=frozenset({"started_at", "finished_at", "error", "outputs"}),
                greatest=frozenset({"next_seq"}),
            )
            if postgres
            else None,
        )
        self.delete_execution_events = self._compile(
            "delete_execution_events", DELETE_EXECUTION_EVENTS, order=50
        )
        self.delete_execution_node_runs = self._compile(
            "delete_execution_node_runs", DELETE_EXECUTION_NODE_RUNS, order=51
        )
        self.delete_execution = self._compile("delete_execution", DELETE_EXECUTION, order=52)
        self.record_decision = self._compile("record_decision", RECORD_DECISION)
        self.enqueue = self._compile("enqueue", ENQUEUE)
        self.release = self._compile("release", RELEASE)
        self.requeue_orphans = self._compile("requeue_orphans", REQUEUE_ORPHANS)
        self.claim = self._compile(
            "claim", CLAIM.format(skip_locked="FOR UPDATE SKIP LOCKED" if postgres else "")
        )
        self.claim_many = self._compile(
            "claim_many",
            CLAIM_MANY.format(skip_locked="FOR UPDATE SKIP LOCKED" if postgres else ""),
        )
        self.take_over = self._compile(
            "take_over", TAKE_OVER.format(skip_locked="FOR UPDATE SKIP LOCKED" if postgres else "")
        )
        self.renew_leases = self._compile("renew_leases", RENEW_LEASES)
        self.wake_waiting = self._compile(
            "wake_waiting", WAKE_WAITING.format(due_at=DUE_AT[dialect.name])
        )
        self.select_latest_workflow = self._compile(
            "select_latest_workflow", SELECT_LATEST_WORKFLOW
        )
        self.select_workflow_version = self._compile(
            "select_workflow_version", SELECT_WORKFLOW_VERSION
        )
        self.list_workflows = self._compile("list_workflows", LIST_WORKFLOWS)
        self.list_versions = self._compile("list_versions", LIST_VERSIONS)
        self.workflow_exists = self._compile("workflow_exists", WORKFLOW_EXISTS)
        self.select_execution = self._compile("select_execution", SELECT_EXECUTION)
        self.select_node_runs = self._compile("select_node_runs", SELECT_NODE_RUNS)
        self.select_events = self._compile("select_events", SELECT_EVENTS.format(limit=""))
        self.select_events_limited = self._compile(
            "select_events_limited", SELECT_EVENTS.format(limit="LIMIT :limit")
        )
        self.select_resume = self._compile("select_resume", SELECT_RESUME)
        self._listings: dict[frozenset[str], tuple[Statement, Statement]] = {}

    def list_executions(self, filters: frozenset[str]) -> tuple[Statement, Statement]:
        """(page query, count query) for the given ``EXECUTION_FILTERS`` keys."""
        cached = self._listings.get(filters)
        if cached is None:
            clauses = [clause for key, clause in EXECUTION_FILTERS.items() if key in filters]
            where = "WHERE " + " AND ".join(clauses) if clauses else ""
            name = "list_executions_" + "_".join(sorted(filters))
            cached = (
                self._compile(name, LIST_EXECUTIONS.format(where=where)),
                self._compile(name + "_count", COUNT_EXECUTIONS.format(where=where)),
            )
            # Sixteen combinations at most; a race only compiles one twice.
            self._listings[filters] = cached
        return cached

    def _compile(
        self,
        name: str,
        sql: str,
        *,
        order: int = 0,
        one_row_each: bool = False,
        bulk: Bulk | None = None,
        positional: bool = False,
    ) -> Statement:
        rendered = str(text(sql.strip()).compile(dialect=self._dialect))
        positional_sql: str | None = None
        values: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None
        if positional:
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match[1] not in names:
                    names.append(match[1])
                return f"?{names.index(match[1]) + 1}"

            positional_sql = _NAMED_PARAMETER.sub(number, rendered)
            # Two names or more: itemgetter makes the tuple itself, in C.
            assert len(names) > 1, name
            values = itemgetter(*names)
        return Statement(
            name=name,
            sql=rendered,
            order=order,
            one_row_each=one_row_each,
            bulk=bulk,
            positional_sql=positional_sql,
            values=values,
        )


#: A ``:name`` parameter as the SQLite dialect renders it.
_NAMED_PARAMETER: Final = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
