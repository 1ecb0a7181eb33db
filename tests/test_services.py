"""The service fixtures themselves: a real redis-server and a real PostgreSQL answer."""

from __future__ import annotations

import psycopg
import redis
from services import postgres_server, postgres_url, redis_url  # noqa: F401  (fixtures)


def test_redis_answers(redis_url: str) -> None:  # noqa: F811
    r = redis.Redis.from_url(redis_url)
    assert r.ping()
    r.set("kcrash-probe", b"1")
    assert r.get("kcrash-probe") == b"1"
    assert r.info("server")["redis_version"]


def test_postgres_answers(postgres_url: str) -> None:  # noqa: F811
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE probe (id serial PRIMARY KEY, v text)")
        conn.execute("INSERT INTO probe (v) VALUES ('x')")
        row = conn.execute("SELECT count(*), current_database(), version() FROM probe").fetchone()
    assert row is not None
    assert row[0] == 1
    assert row[1] == url.rsplit("/", 1)[1]
    assert row[2].startswith("PostgreSQL ")
