"""Flowork: seen signatures, engines and their shares and claims, workflow share links,
user state, the kill switch, presets and variables.

Written by hand from ``runnel.store.tables`` with the names of its naming convention.

Revision ID: 0004
Revises: 0003
Create Date: 2024-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_signatures",
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_seen_signatures"),
    )
    op.create_index("ix_seen_signatures_expires_at", "seen_signatures", ["expires_at"])
    op.create_table(
        "engines",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("embedded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("internal_api_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_engines"),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name="fk_engines_owner_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_sha256", name="uq_engines_token_sha256"),
    )
    op.create_index("ix_engines_owner_id", "engines", ["owner_id"])
    op.create_table(
        "engine_shares",
        sa.Column("engine_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("engine_id", "user_id", name="pk_engine_shares"),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name="fk_engine_shares_engine_id_engines",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_engine_shares_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_engine_shares_user_id", "engine_shares", ["user_id"])
    op.create_table(
        "engine_claims",
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("engine_id", sa.Text(), nullable=False),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_engine_claims"),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name="fk_engine_claims_engine_id_engines",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "workflow_share_links",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("preset_name", sa.Text(), nullable=False),
        sa.Column("permission", sa.Text(), nullable=False),
        sa.Column("link_name", sa.Text(), nullable=True),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_share_links"),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name="fk_workflow_share_links_owner_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_sha256", name="uq_workflow_share_links_token_sha256"),
    )
    op.create_index(
        "ix_workflow_share_links_owner_id_preset_name",
        "workflow_share_links",
        ["owner_id", "preset_name"],
    )
    op.create_table(
        "user_state",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_user_state"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_user_state_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "disabled_components",
        sa.Column("component_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("disabled_by", sa.Text(), nullable=True),
        sa.Column("disabled_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("component_id", name="pk_disabled_components"),
    )
    op.create_table(
        "preset_versions",
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("previous_hash", sa.Text(), nullable=True),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("workflow_data", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("owner", "name", "version", name="pk_preset_versions"),
    )
    op.create_table(
        "variables",
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("is_secret", sa.Boolean(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("sequence_next", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "name", name="pk_variables"),
    )


def downgrade() -> None:
    op.drop_table("variables")
    op.drop_table("preset_versions")
    op.drop_table("disabled_components")
    op.drop_table("user_state")
    op.drop_index("ix_workflow_share_links_owner_id_preset_name", table_name="workflow_share_links")
    op.drop_table("workflow_share_links")
    op.drop_table("engine_claims")
    op.drop_index("ix_engine_shares_user_id", table_name="engine_shares")
    op.drop_table("engine_shares")
    op.drop_index("ix_engines_owner_id", table_name="engines")
    op.drop_table("engines")
    op.drop_index("ix_seen_signatures_expires_at", table_name="seen_signatures")
    op.drop_table("seen_signatures")
