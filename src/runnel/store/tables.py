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
    UniqueConstraint,
    false,
    text,
)

__all__ = [
    "NAMING",
    "api_keys",
    "channels",
    "disabled_components",
    "engine_claims",
    "engine_shares",
    "engines",
    "execution_events",
    "executions",
    "group_members",
    "groups",
    "kv_entries",
    "metadata",
    "node_runs",
    "preset_versions",
    "schedule_fires",
    "schedules",
    "seen_signatures",
    "sessions",
    "user_state",
    "users",
    "variables",
    "workflow_share_links",
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

# -- flow8 (runnel.store.flow8) ----------------------------------------------------------

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie value: a stolen database does not yield live sessions.
    Column("id", Text, primary_key=True),
    Column(
        "user_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index(None, "user_id"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column(
        "group_id",
        Text,
        ForeignKey("groups.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "user_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # owner, editor, runner, viewer (runnel.services.access).
    Column("role", Text, nullable=False),
    Column("added_at", Double, nullable=False),
    PrimaryKeyConstraint("group_id", "user_id"),
    # "Which groups am I in" is asked on every request that lists things.
    Index(None, "user_id"),
)

kv_entries = Table(
    "kv_entries",
    metadata,
    Column("id", Text, primary_key=True),
    # "user:<id>" or "group:<id>": whose key space the entry lives in.
    Column("scope", Text, nullable=False),
    Column("key", Text, nullable=False),
    # codec JSON
    Column("value", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # NULL: never expires.
    Column("expires_at", Double),
    UniqueConstraint("scope", "key"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("owner", Text),
    Column("group_id", Text),
    # The non-secret settings as JSON (URL host, SMTP host/port, from, to...).
    Column("config", Text, nullable=False),
    # The secret settings, JSON encrypted with the instance key (runnel.auth.secret).
    Column("secret", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    # Set for schedules derived from a workflow's Cron trigger; NULL for flow8 schedules.
    Column("trigger_id", Text),
    Column("owner", Text),
    Column("cron", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("args", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("catchup", Text, nullable=False),
    # The next fire time not yet handled (unix seconds); NULL when disabled.
    Column("next_run_at", Double),
    Column("last_run_at", Double),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index(None, "next_run_at"),
    Index(None, "workflow_id"),
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column(
        "schedule_id",
        Text,
        ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The unique key (schedule, fire time) is what makes a fire happen once whichever
    # scheduler process gets there first.
    Column("fire_time", Double, nullable=False),
    Column("fired_at", Double, nullable=False),
    # NULL until the execution is started ("" when the fire started none: flow disabled).
    Column("execution_id", Text),
    PrimaryKeyConstraint("schedule_id", "fire_time"),
    # Unstarted fires are looked for, and old fires pruned, by claim time.
    Index(None, "fired_at"),
)

# -- Flowork gateway and engine (runnel.store.signatures, engines, sharelinks, userstate,
# killswitch, presets, variables) --------------------------------------------------------

seen_signatures = Table(
    "seen_signatures",
    metadata,
    # SHA-256 of (address, message, signature): a signed message is accepted once.
    Column("digest", Text, primary_key=True),
    # When the message can no longer pass the time window, so the row can go.
    Column("expires_at", Double, nullable=False),
    Index(None, "expires_at"),
)

engines = Table(
    "engines",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "owner_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", Text, nullable=False),
    # SHA-256 of the dev_engine_ token (high-entropy, so a plain digest is enough): a
    # token finds its engine with one indexed read.
    Column("token_sha256", Text, nullable=False, unique=True),
    # The engine that runs inside the gateway's own processes (one per installation).
    Column("embedded", Boolean, nullable=False, server_default=false()),
    # Where a separate engine process answers the gateway's forwarded requests.
    Column("internal_api_url", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("last_seen_at", Double),
    Index(None, "owner_id"),
)

engine_shares = Table(
    "engine_shares",
    metadata,
    Column(
        "engine_id",
        Text,
        ForeignKey("engines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "user_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("engine_id", "user_id"),
    # "Which engines are shared with me" is asked on every proxied request.
    Index(None, "user_id"),
)

engine_claims = Table(
    "engine_claims",
    metadata,
    # The engine dashboard's request id; its token is claimed once, within the window.
    Column("request_id", Text, primary_key=True),
    Column(
        "engine_id",
        Text,
        ForeignKey("engines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The new token, encrypted with the instance key (runnel.auth.sealing).
    Column("token_sealed", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
)

workflow_share_links = Table(
    "workflow_share_links",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "owner_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("preset_name", Text, nullable=False),
    # view, view-run or view-edit-run.
    Column("permission", Text, nullable=False),
    Column("link_name", Text),
    # Found by digest; the token itself is kept encrypted, for the owner's list.
    Column("token_sha256", Text, nullable=False, unique=True),
    Column("token_sealed", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index(None, "owner_id", "preset_name"),
)

user_state = Table(
    "user_state",
    metadata,
    Column(
        "user_id",
        Text,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", Text, nullable=False),
    # JSON
    Column("value", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
    PrimaryKeyConstraint("user_id", "key"),
)

disabled_components = Table(
    "disabled_components",
    metadata,
    # As the operator wrote it: a node type id or a Flowork module id (an alias).
    Column("component_id", Text, primary_key=True),
    Column("reason", Text),
    Column("disabled_by", Text),
    Column("disabled_at", Double, nullable=False),
)

preset_versions = Table(
    "preset_versions",
    metadata,
    # An engine's presets belong to a Flowork address (lower-case hex).
    Column("owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("author", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # SHA-256 of the previous version's canonical JSON; NULL for the first version.
    Column("previous_hash", Text),
    # SHA-256 of this version's canonical JSON (the next version's previous_hash).
    Column("hash", Text, nullable=False),
    # JSON; never updated once written.
    Column("workflow_data", Text, nullable=False),
    Column("signature", Text),
    PrimaryKeyConstraint("owner", "name", "version"),
)

variables = Table(
    "variables",
    metadata,
    Column("owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    # single, random or sequential.
    Column("mode", Text, nullable=False),
    Column("is_secret", Boolean, nullable=False),
    Column("is_enabled", Boolean, nullable=False),
    # JSON {"value", "values"}; encrypted with the instance key when the variable is secret.
    Column("payload", Text, nullable=False),
    # The next index a sequential variable hands out.
    Column("sequence_next", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", Double, nullable=False),
    PrimaryKeyConstraint("owner", "name"),
)
