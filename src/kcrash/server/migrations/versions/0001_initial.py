"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-30

Hosts, crashes, buckets (with merges and split pins), their history, hashed tokens, meta.
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
        "buckets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("class", sa.String(length=100), nullable=True),
        sa.Column("culprit", sa.String(length=300), nullable=True),
        sa.Column("culprit_module", sa.String(length=300), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("fixed_in", sa.String(length=300), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("representative_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["buckets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("signature"),
    )
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_buckets_class"), ["class"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_buckets_culprit_module"), ["culprit_module"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_buckets_last_seen"), ["last_seen"], unique=False)

    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("machine_id", sa.String(length=300), nullable=True),
        sa.Column("distro", sa.String(length=300), nullable=True),
        sa.Column("hardware", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hosts_name"), ["name"], unique=False)

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "crashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("crashed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kernel_release", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.Column("bucket_id", sa.Integer(), nullable=True),
        sa.Column("pinned_bucket_id", sa.Integer(), nullable=True),
        sa.Column("blob_path", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("class", sa.String(length=100), nullable=True),
        sa.Column("culprit_module", sa.String(length=300), nullable=True),
        sa.Column("taint", sa.String(length=100), nullable=True),
        sa.Column("panic", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("analysis_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["buckets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pinned_bucket_id"],
            ["buckets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    with op.batch_alter_table("crashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crashes_bucket_id"), ["bucket_id"], unique=False)
        batch_op.create_index(
            "ix_crashes_bucket_received", ["bucket_id", "received_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_crashes_class"), ["class"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_crashes_culprit_module"), ["culprit_module"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_crashes_host_id"), ["host_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_crashes_kernel_release"), ["kernel_release"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_crashes_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_crashes_signature"), ["signature"], unique=False)
        batch_op.create_index(batch_op.f("ix_crashes_status"), ["status"], unique=False)

    op.create_table(
        "bucket_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crash_id", sa.Integer(), nullable=False),
        sa.Column("old_bucket", sa.Integer(), nullable=True),
        sa.Column("new_bucket", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["crash_id"], ["crashes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bucket_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bucket_history_crash_id"), ["crash_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bucket_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bucket_history_crash_id"))

    op.drop_table("bucket_history")
    with op.batch_alter_table("crashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crashes_status"))
        batch_op.drop_index(batch_op.f("ix_crashes_signature"))
        batch_op.drop_index(batch_op.f("ix_crashes_received_at"))
        batch_op.drop_index(batch_op.f("ix_crashes_kernel_release"))
        batch_op.drop_index(batch_op.f("ix_crashes_host_id"))
        batch_op.drop_index(batch_op.f("ix_crashes_culprit_module"))
        batch_op.drop_index(batch_op.f("ix_crashes_class"))
        batch_op.drop_index("ix_crashes_bucket_received")
        batch_op.drop_index(batch_op.f("ix_crashes_bucket_id"))

    op.drop_table("crashes")
    op.drop_table("tokens")
    op.drop_table("meta")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_name"))

    op.drop_table("hosts")
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buckets_last_seen"))
        batch_op.drop_index(batch_op.f("ix_buckets_culprit_module"))
        batch_op.drop_index(batch_op.f("ix_buckets_class"))

    op.drop_table("buckets")
