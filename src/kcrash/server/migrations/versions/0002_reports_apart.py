"""reports in their own table; covering indexes per bucket and host

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Why: a 10-30 KB report inside each crashes row made every scan (text search, metrics, a
host's crash list) read gigabytes at 100,000 crashes.  Existing reports are copied over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_crashes_bucket_host", ["bucket_id", "host_id"]),
    ("ix_crashes_bucket_kernel", ["bucket_id", "kernel_release"]),
    ("ix_crashes_host_received", ["host_id", "received_at"]),
)


def upgrade() -> None:
    op.create_table(
        "crash_reports",
        sa.Column("crash_id", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["crash_id"], ["crashes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("crash_id"),
    )
    op.execute(
        "INSERT INTO crash_reports (crash_id, report) "
        "SELECT id, report FROM crashes WHERE report IS NOT NULL"
    )
    with op.batch_alter_table("crashes", schema=None) as batch_op:
        batch_op.drop_column("report")
        for name, cols in INDEXES:
            batch_op.create_index(name, cols, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crashes", schema=None) as batch_op:
        for name, _cols in INDEXES:
            batch_op.drop_index(name)
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE crashes SET report = "
        "(SELECT report FROM crash_reports WHERE crash_reports.crash_id = crashes.id)"
    )
    op.drop_table("crash_reports")
