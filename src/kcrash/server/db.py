"""Engine, sessions and migrations: one code path for SQLite and PostgreSQL.

SQLite is the embedded default (DATA/kcrash.db): WAL journal so readers never wait for the
writer, a busy timeout so the API and the analysis pool take turns instead of failing with
"database is locked", and foreign keys switched on (SQLite leaves them off).  PostgreSQL
comes in through ``--database postgresql://…`` (psycopg 3) with the same ORM code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _normalize(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default driver is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> Engine:
    url = _normalize(settings.db_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # pysqlite's own BEGIN is deferred: a transaction that reads, then writes (find
            # the host, then insert it) fails at once with "database is locked" when another
            # writer got there first — busy_timeout does not apply to that upgrade.  So the
            # driver's transaction handling is off and every transaction is IMMEDIATE
            # (below): writers queue on the busy timeout instead of failing; WAL readers of
            # other connections are not blocked.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        db_file = settings.data_dir / "kcrash.db"
        if not settings.database_url:
            # Reports hold kernel memory excerpts: the database is as private as the dumps.
            db_file.touch(mode=0o600, exist_ok=True)
            os.chmod(db_file, 0o600)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision (idempotent; run at every start)."""
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (every migration is reversible; tested)."""
    _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection
        if sqlite:
            # SQLite's ALTER is a table rebuild (Alembic's batch mode): with foreign keys on,
            # dropping the old table would cascade into every child table (history, reports).
            # The pragma is a no-op inside a transaction, so it goes first, outside one.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                getattr(command, direction)(cfg, revision)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


class Database:
    """An engine plus its session factory; ``open_database`` migrates before first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    db = Database(settings)
    if migrate:
        upgrade(db.engine)
    return db
