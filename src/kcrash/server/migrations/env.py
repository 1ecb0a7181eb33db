"""Alembic environment: the connection comes from :func:`kcrash.server.db.upgrade`.

No alembic.ini: the server runs migrations itself at start-up, with the engine it already
has, so an operator never types an Alembic command.
"""

from __future__ import annotations

from alembic import context

from kcrash.server.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
