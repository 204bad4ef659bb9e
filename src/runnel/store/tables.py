"""The schema, as SQLAlchemy Core tables on one ``MetaData``.

Types are chosen to mean the same on SQLite and PostgreSQL: JSON is stored as ``Text``
(written by ``runnel.store.codec``, which keeps ``bytes``), times as ``Double`` unix seconds.
The Alembic migrations in ``migrations/versions`` build this same schema; a test compares
the two. Change both together.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Boolean,
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
    false,
    text,
)

__all__ = [
    "NAMING",
    "api_keys",
    "execution_events",
    "executions",
    "metadata",
    "node_runs",
    "users",
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

# -- accounts (runnel.store.accounts) ---------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True),
    # Stored lower-cased; NULL for accounts that sign in otherwise (the owner's API key,
    # a Flowork address).
    Column("email", Text, unique=True),
    Column("display_name", Text),
    # argon2id; NULL: no password sign-in.
    Column("password_hash", Text),
    Column("role", Text, nullable=False),
    # A Flowork (EIP-191) address, lower-cased hex.
    Column("address", Text, unique=True),
    Column("created_at", Double, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

api_keys = Table(
    "api_keys",
    metadata,
    # The token's ``jti``: a request's key is found by it, then its digest compared.
    Column("id", Text, primary_key=True),
    Column(
        "user_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", Text, nullable=False),
    # A display hint of the token (see runnel.auth.tokens.token_hint), never the token.
    Column("prefix", Text, nullable=False),
    Column("token_sha256", Text, nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double),
    Column("expires_at", Double),
    Column("revoked_at", Double),
    Index(None, "user_id"),
)
