"""full-text index of the panic line

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Why: the search box (``q`` of ``/api/v1/buckets`` and ``/api/v1/crashes``, the dashboard's
search) was ``lower(panic) LIKE '%…%'``: a scan of every crash, seconds at 100,000 crashes.
Each database's own full-text index replaces it (``queries.text_match`` uses them):

- SQLite: an FTS5 table over ``crashes.panic`` as *external content* (the text is not
  stored twice; FTS5 keeps only its index), kept in step by three triggers.  SQLite's
  table rebuilds (Alembic batch mode) drop a table's triggers: a later migration that
  rebuilds ``crashes`` must call :func:`create_sqlite` again after it.
- PostgreSQL: a GIN index on ``to_tsvector('simple', coalesce(panic, ''))`` — the
  ``simple`` configuration lowercases and splits but does not stem or drop stop words:
  a panic line is kernel vocabulary, not English prose.

Neither object can be declared portably in ``models.py``; the migration test knows them.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The expression ``queries.text_match`` must repeat exactly for PostgreSQL to use the index.
PG_EXPR = "to_tsvector('simple', coalesce(panic, ''))"

SQLITE_OBJECTS = (
    "CREATE VIRTUAL TABLE crashes_fts USING fts5("
    "panic, content='crashes', content_rowid='id', tokenize='unicode61')",
    # An external-content FTS5 table is told of every change, with the old text to remove.
    "CREATE TRIGGER crashes_fts_insert AFTER INSERT ON crashes BEGIN "
    "INSERT INTO crashes_fts(rowid, panic) VALUES (new.id, new.panic); END",
    "CREATE TRIGGER crashes_fts_delete AFTER DELETE ON crashes BEGIN "
    "INSERT INTO crashes_fts(crashes_fts, rowid, panic) VALUES ('delete', old.id, old.panic); "
    "END",
    "CREATE TRIGGER crashes_fts_update AFTER UPDATE OF panic ON crashes BEGIN "
    "INSERT INTO crashes_fts(crashes_fts, rowid, panic) VALUES ('delete', old.id, old.panic); "
    "INSERT INTO crashes_fts(rowid, panic) VALUES (new.id, new.panic); END",
    # The crashes stored before this migration.
    "INSERT INTO crashes_fts(crashes_fts) VALUES ('rebuild')",
)


def create_sqlite() -> None:
    for sql in SQLITE_OBJECTS:
        op.execute(sql)


def drop_sqlite() -> None:
    for trigger in ("crashes_fts_update", "crashes_fts_delete", "crashes_fts_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS crashes_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        create_sqlite()
    else:
        op.execute(f"CREATE INDEX ix_crashes_panic_fts ON crashes USING gin ({PG_EXPR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        drop_sqlite()
    else:
        op.execute("DROP INDEX IF EXISTS ix_crashes_panic_fts")
