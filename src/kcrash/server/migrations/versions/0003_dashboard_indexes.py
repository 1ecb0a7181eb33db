"""covering indexes for the dashboard's overview

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Why: the overview groups every crash of the last 30 days by day and class, and every crash
by kernel release with its hosts; without an index holding those columns each is a scan
of the whole table (0.4 s of CPU each at 100,000 crashes, bench/dashboard_pages.py), with
one they read only the index.  Declared in ``models.py`` (``Crash.__table_args__``).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    # crashes per day by class; spiking buckets (last day against the week before)
    ("ix_crashes_received_class", ["received_at", "class", "bucket_id"]),
    # kernels in the fleet: crashes, distinct hosts and last crash per release
    ("ix_crashes_kernel_host", ["kernel_release", "host_id", "received_at"]),
)


def upgrade() -> None:
    for name, cols in INDEXES:
        op.create_index(name, "crashes", cols, unique=False)


def downgrade() -> None:
    for name, _cols in reversed(INDEXES):
        op.drop_index(name, "crashes")
