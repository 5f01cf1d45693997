"""Baseline: the schema of esc-orch 0.1.0, created with create_all before migrations existed.

Revision ID: 0001
Revises:
Created: 2026-12-01

Do not edit: databases of 0.1.0 are stamped with this revision as they are (migrate.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_unit",
        sa.Column("datastore", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("parent_key", sa.String(600), nullable=True),
        sa.Column("xml", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("datastore", "kind", "key"),
    )
    op.create_index("ix_config_unit_parent", "config_unit", ["datastore", "kind", "parent_key"])
    op.create_table(
        "config_ref",
        sa.Column("datastore", sa.String(16), nullable=False),
        sa.Column("src_kind", sa.String(32), nullable=False),
        sa.Column("src_key", sa.String(600), nullable=False),
        sa.Column("dst_kind", sa.String(32), nullable=False),
        sa.Column("dst_key", sa.String(600), nullable=False),
        sa.PrimaryKeyConstraint("datastore", "src_kind", "src_key", "dst_kind", "dst_key"),
    )
    op.create_index("ix_config_ref_dst", "config_ref", ["datastore", "dst_kind", "dst_key"])
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "event_log",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_log_time", "event_log", ["event_time"])
    op.create_table(
        "lifecycle_journal",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("depid", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("step_id"),
    )
    op.create_index("ix_lifecycle_journal_open", "lifecycle_journal", ["status"])
    op.create_table(
        "lifecycle_state",
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("depid", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "deployment"),
    )


def downgrade() -> None:
    for table in (
        "lifecycle_state",
        "lifecycle_journal",
        "event_log",
        "meta",
        "config_ref",
        "config_unit",
    ):
        op.drop_table(table)
