"""The schema, as SQLAlchemy Core tables on one ``MetaData``.

Types are chosen to mean the same on SQLite and PostgreSQL: JSON is stored as ``Text``
(written by ``runnel.store.codec``, which keeps ``bytes``), times as ``Double`` unix seconds.
The Alembic migrations in ``migrations/versions`` build this same schema; a test compares
the two. Change both together.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

__all__ = [
    "NAMING",
    "execution_events",
    "executions",
    "metadata",
    "node_runs",
    "workflow_versions",
    "workflows",
]

#: Constraint names fixed by convention so that migrations can refer to them on both dialects.
NAMING: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

workflows = Table(
    "workflows",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("owner", Text),
    Column("group_id", Text),
    Column("latest_version", Integer, nullable=False),
    # Soft delete: a deleted workflow is neither found nor executable; its versions and
    # executions stay for history.
    Column("deleted_at", Double),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", Text, ForeignKey("workflows.id"), nullable=False),
    Column("version", Integer, nullable=False),
    # The whole Workflow as codec JSON; never updated once written.
    Column("definition", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("created_by", Text),
    PrimaryKeyConstraint("workflow_id", "version"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text),
    Column("error", Text),
    Column("parent_id", Text),
    Column("attempt", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    # The queue: set while the execution waits to be claimed, NULL otherwise.
    Column("queued_at", Double),
    Column("lease_owner", Text),
    Column("lease_expires_at", Double),
    Column("takeovers", Integer, nullable=False, server_default=text("0")),
    # The next event seq; checkpoints raise it, resumes start from it.
    Column("next_seq", Integer, nullable=False, server_default=text("1")),
    # An execution records the exact version it ran, which therefore must exist.
    ForeignKeyConstraint(
        ["workflow_id", "workflow_version"],
        ["workflow_versions.workflow_id", "workflow_versions.version"],
    ),
    # The queue claims by (status, queued_at); the status prefix serves status filters too.
    Index(None, "status", "queued_at"),
    Index(None, "workflow_id", "created_at"),
    # Unfiltered history lists, newest first.
    Index(None, "created_at"),
)

node_runs = Table(
    "node_runs",
    metadata,
    Column(
        "execution_id",
        Text,
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("node_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("inputs", Text),
    Column("outputs", Text),
    Column("error", Text),
    Column("wait", Text),
    Column("decision", Text),
    Column("started_at", Double),
    Column("finished_at", Double),
    PrimaryKeyConstraint("execution_id", "node_id"),
)

execution_events = Table(
    "execution_events",
    metadata,
    Column(
        "execution_id",
        Text,
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("node_id", Text),
    Column("timestamp", Double, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("execution_id", "seq"),
)
