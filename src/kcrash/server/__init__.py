"""``kcrash server``: collect, bucket and track kernel crashes from a fleet.

One code base, two ways to run: the embedded default (a SQLite file under the data
directory, analysis in a local pool of child processes) and a deployment (PostgreSQL
plus Celery workers on a Redis broker).  The analysis boundary is the JSON report that
``python -m kcrash analyze --format json`` prints in a child process
(:mod:`kcrash.server.analysis`): the server never imports the analysis internals, so a
hostile dump can only take a child process down, and a refactor of the analysis modules
cannot break the server.

Modules: :mod:`config` (settings), :mod:`db` and :mod:`models` (SQLAlchemy, Alembic
migrations), :mod:`auth` (hashed tokens, roles), :mod:`store` (content-addressed blobs),
:mod:`analysis`, :mod:`ingest`, :mod:`buckets`, :mod:`queries`, :mod:`jobs`,
:mod:`metrics`, :mod:`retention`, :mod:`api` (``create_app``).
"""
