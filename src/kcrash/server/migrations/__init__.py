"""Alembic migrations of the schema (run at every start by :func:`kcrash.server.db.upgrade`)."""
