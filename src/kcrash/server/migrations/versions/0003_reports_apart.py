"""reports in their own table

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Why: a 10-30 KB report inside each crashes row made every scan that no index of 0002
covers (metrics, a crash list filtered several ways) read gigabytes at 100,000 crashes.
Existing reports are copied over; SQLite's table rebuild keeps 0002's indexes (Alembic's
batch mode reflects and recreates them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    with op.batch_alter_table("crashes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE crashes SET report = "
        "(SELECT report FROM crash_reports WHERE crash_reports.crash_id = crashes.id)"
    )
    op.drop_table("crash_reports")
