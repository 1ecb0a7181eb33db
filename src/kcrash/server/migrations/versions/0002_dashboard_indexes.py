"""covering indexes for the dashboard's aggregates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Why: a crash row holds its whole report JSON (kilobytes) before the columns the dashboard
groups by, so on SQLite any scan of ``crashes`` reads every report's overflow pages; at
100,000 crashes the overview took seconds.  These indexes hold every column the overview,
the host list and the bucket page's tables read, so those queries never touch the rows
(bench/dashboard_pages.py measures the pages).  Added by the dashboard (branch ``dash``);
``models.py`` does not declare them, the ORM does not need to know.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: name -> columns, each with the page that needs it.
INDEXES = {
    # overview: crashes per day by class
    "ix_crashes_received_cover": ["received_at", "class", "bucket_id"],
    # overview: kernels with their crashes, hosts and last crash
    "ix_crashes_kernel_cover": ["kernel_release", "host_id", "received_at"],
    # host list (last crash per host) and a host's page
    "ix_crashes_host_received": ["host_id", "received_at"],
    # overview's top buckets by hosts; bucket page: hosts, kernels and taints of one bucket
    "ix_crashes_bucket_cover": ["bucket_id", "host_id", "kernel_release", "taint"],
}


def upgrade() -> None:
    for name, cols in INDEXES.items():
        op.create_index(name, "crashes", cols)
    if op.get_bind().dialect.name == "sqlite":
        # Search in the panic text (crashes, and buckets by their crashes' text): SQLite
        # scans this index instead of the rows.  Not on
        # PostgreSQL, whose B-tree entries are limited to ~2.7 kB (a 2,000-character panic
        # line in UTF-8 can exceed it); a pg_trgm index is the way there.
        op.create_index("ix_crashes_panic", "crashes", ["panic", "bucket_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_crashes_panic", "crashes")
    for name in reversed(INDEXES):
        op.drop_index(name, "crashes")
