"""The server's database logic on SQLite and on a real PostgreSQL (tests/services.py):
grouping, merges and splits that survive regrouping, states, queries, retention, tokens.

The reports are real: ``kcrash analyze --format json`` of oops logs in tests/data/oops.
Crashes enter through the same functions the API and the workers use
(``ingest.record_upload`` then ``ingest.process_crash`` on the stored report file).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import kcrash_env
from services import postgres_server, postgres_url  # noqa: F401 (fixtures)

from kcrash.server import auth, buckets, ingest, metrics, queries, retention
from kcrash.server.config import Settings
from kcrash.server.db import Database, make_engine, open_database, upgrade
from kcrash.server.models import BucketHistory, Crash, Meta, Token
from kcrash.server.store import BlobStore

OOPS = Path(__file__).parent / "data" / "oops"
LOGS = {
    "gpf": "x86-oops-gpf-6.x.txt",
    "bug": "s390x-bug-on.txt",
    "null": "arm64-6.10-null.txt",
    "ud": "x86-oops-invalid-opcode-6.15.txt",
}


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    out = {}
    for name, log in LOGS.items():
        r = subprocess.run(
            [sys.executable, "-m", "kcrash", "analyze", str(OOPS / log), "--format", "json"],
            env=kcrash_env(),
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        out[name] = json.loads(r.stdout)
    assert len({r["signature"]["id"] for r in out.values()}) == len(out)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    database = open_database(settings)
    yield database
    database.engine.dispose()


class Fleet:
    """Puts real reports in as if hosts had submitted them."""

    def __init__(self, db: Database, reports: dict[str, dict[str, Any]]) -> None:
        self.db = db
        self.reports = reports
        self.store = BlobStore(db.settings.blob_dir, db.settings.limits)
        self.n = 0

    def crash(self, name: str, host: str, kernel: str, when: dt.datetime | None = None) -> int:
        self.n += 1
        # Same report, different bytes (indentation): a different upload, the same signature.
        data = json.dumps(self.reports[name], indent=self.n).encode()
        sha = hashlib.sha256(data).hexdigest()
        path = self.store.path_for(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self.db.session() as s:
            crash, new = ingest.record_upload(
                s,
                sha256=sha,
                kind="report",
                blob_path=path,
                size=len(data),
                facts={"host": host, "kernel_release": kernel},
            )
            assert new
            if when is not None:
                crash.received_at = when
            s.flush()
            cid = crash.id
        with self.db.sessions() as s:
            c = ingest.process_crash(s, cid, self.db.settings)
            assert c is not None and c.status == "done", c and c.error
        return cid

    def bucket_of(self, cid: int) -> str:
        with self.db.session() as s:
            c = s.get(Crash, cid)
            assert c is not None and c.bucket is not None
            return c.bucket.signature

    def sig(self, name: str) -> str:
        return str(self.reports[name]["signature"]["id"])


def test_grouping_merge_split_survive_regroup(db: Database, reports: dict[str, Any]) -> None:
    f = Fleet(db, reports)
    g1 = f.crash("gpf", "web-1", "6.1.0-1")
    g2 = f.crash("gpf", "web-2", "6.1.0-2")
    g3 = f.crash("gpf", "web-3", "6.1.0-2")
    b1 = f.crash("bug", "db-1", "6.1.0-1")
    n1 = f.crash("null", "db-2", "6.1.0-1")
    assert f.bucket_of(g1) == f.bucket_of(g2) == f.bucket_of(g3) == f.sig("gpf")
    assert f.bucket_of(b1) == f.sig("bug") != f.bucket_of(n1)
    # Running the same crash again changes nothing (idempotent).
    with db.sessions() as s:
        ingest.process_crash(s, g1, db.settings)
        assert s.get(Crash, g1).status == "done"  # type: ignore[union-attr]
    with db.session() as s:
        # A person: "bug" is the same bug as "gpf"; crash g3 is a different one.
        buckets.merge(s, f.sig("bug"), f.sig("gpf"))
        split = buckets.split(s, f.sig("gpf"), [g3], "mremap race on web-3")
        split_sig = split.signature
    assert f.bucket_of(b1) == f.sig("gpf") and f.bucket_of(g3) == split_sig
    # A later crash of the merged signature follows the merge.
    b2 = f.crash("bug", "db-3", "6.1.0-3")
    assert f.bucket_of(b2) == f.sig("gpf")
    with db.session() as s:
        gpf = queries.get_bucket(s, f.sig("gpf"))
        assert gpf is not None and gpf["count"] == 4 and gpf["merged"] == [f.sig("bug")]
        # New rules: the gpf crashes get a new signature (what a rules change does), the
        # "bug" ones keep theirs.  Regrouping moves them; the human choices hold.
        for cid in (g1, g2, g3):
            s.get(Crash, cid).signature = "0123456789abcdef"  # type: ignore[union-attr]
        moved = buckets.regroup(s)
    assert moved == 2
    assert f.bucket_of(g1) == f.bucket_of(g2) == "0123456789abcdef"
    assert f.bucket_of(g3) == split_sig, "a split crash stays split after regrouping"
    assert f.bucket_of(b1) == f.bucket_of(b2) == f.sig("gpf"), "a merge survives regrouping"
    with db.session() as s:
        reasons = [
            (h.old_bucket is not None, h.reason)
            for h in s.query(BucketHistory).filter(BucketHistory.crash_id == g1)
        ]
        assert reasons == [(False, "analysis"), (True, "regroup")]
        page = queries.list_buckets(s)
        counts = {b["signature"]: b["count"] for b in page.items}
        assert counts == {"0123456789abcdef": 2, split_sig: 1, f.sig("gpf"): 2, f.sig("null"): 1}
        buckets.unmerge(s, f.sig("bug"))
    assert f.bucket_of(b1) == f.bucket_of(b2) == f.sig("bug")
    with db.session() as s, pytest.raises(buckets.BucketError, match="itself"):
        buckets.merge(s, f.sig("bug"), f.sig("bug"))
    with db.session() as s, pytest.raises(buckets.BucketError, match="at least one crash"):
        buckets.split(s, f.sig("null"), [n1])


def test_bucket_states(db: Database, reports: dict[str, Any]) -> None:
    f = Fleet(db, reports)
    f.crash("ud", "web-1", "6.15.0")
    sig = f.sig("ud")
    with db.session() as s:
        with pytest.raises(buckets.BucketError, match="needs fixed_in"):
            buckets.set_state(s, sig, "fixed")
        with pytest.raises(buckets.BucketError, match="state must be one of"):
            buckets.set_state(s, sig, "closed")
        buckets.set_state(s, sig, "fixed", "6.15.2")
    with db.session() as s:
        assert queries.list_buckets(s, queries.Filters(state="fixed")).items[0]["fixed_in"] == (
            "6.15.2"
        )
        buckets.set_state(s, sig, "ignored")
        row = queries.get_bucket(s, sig)
        assert row is not None and row["state"] == "ignored" and row["fixed_in"] is None


def test_queries_filters_pagination_csv(db: Database, reports: dict[str, Any]) -> None:
    f = Fleet(db, reports)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(5):
        f.crash("gpf", f"web-{i}", "6.1.0-1", t0 + dt.timedelta(days=i))
    f.crash("null", "arm-1", "6.10.0", t0 + dt.timedelta(days=10))
    f.crash("bug", "=cmd|' /C calc'!A0", "4.19.0", t0 + dt.timedelta(days=20))
    with db.session() as s:
        assert queries.list_buckets(s).total == 3
        assert queries.list_buckets(s, sort="count").items[0]["class"] == "gpf"
        by_class = queries.list_buckets(s, queries.Filters(class_="bug-on"))
        assert [b["signature"] for b in by_class.items] == [f.sig("bug")]
        # The log names its kernel: that release wins over the one the host sent.
        arm = reports["null"]["system"]["release"]
        by_kernel = queries.list_buckets(s, queries.Filters(kernel=arm))
        assert [b["signature"] for b in by_kernel.items] == [f.sig("null")]
        # The s390 log names none: the host's is kept.
        by_kernel = queries.list_buckets(s, queries.Filters(kernel="4.19.0"))
        assert [b["signature"] for b in by_kernel.items] == [f.sig("bug")]
        by_host = queries.list_buckets(s, queries.Filters(host="web-3"))
        assert [b["hosts"] for b in by_host.items] == [5]
        by_time = queries.list_crashes(
            s, queries.Filters(since=t0 + dt.timedelta(days=2), until=t0 + dt.timedelta(days=4))
        )
        assert by_time.total == 2
        text = queries.list_buckets(s, queries.Filters(text="NULL pointer"))
        assert [b["signature"] for b in text.items] == [f.sig("null")]
        p1 = queries.list_crashes(s, limit=3, offset=0)
        p2 = queries.list_crashes(s, limit=3, offset=3)
        p3 = queries.list_crashes(s, limit=3, offset=6)
        ids = [c["id"] for p in (p1, p2, p3) for c in p.items]
        assert p1.total == 7 and len(ids) == len(set(ids)) == 7
        hist = queries.host_history(s, "web-2")
        assert hist is not None and hist["crashes"]["total"] == 1
        assert hist["kernels"][0]["kernel_release"] == reports["gpf"]["system"]["release"]
        csv_text = queries.to_csv(queries.list_crashes(s).items, queries.CRASH_CSV)
    lines = csv_text.splitlines()
    assert lines[0].startswith("id,sha256,kind,status,host")
    assert len(lines) == 8
    assert "'=cmd|' /C calc'!A0" in csv_text, "a formula-looking cell is defused"


def _plan(db: Database, stmt: Any) -> str:
    """The database's plan of a statement, as text (the index a search uses)."""
    from sqlalchemy import text

    sql = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as c:
        if db.engine.dialect.name == "sqlite":
            rows = c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            return "\n".join(str(r[-1]) for r in rows)
        # A few rows: force the planner to show that the index can serve the search.
        c.execute(text("SET enable_seqscan = off"))
        return "\n".join(r[0] for r in c.exec_driver_sql(f"EXPLAIN {sql}").all())


def test_text_search_uses_the_full_text_index(db: Database, reports: dict[str, Any]) -> None:
    """``q`` searches the panic line through migration 0004's index (FTS5 on SQLite, a GIN
    tsvector index on PostgreSQL): words, as prefixes, in any case, all of them; no search
    string is query syntax; the index follows updates and deletions of crashes."""
    from sqlalchemy import select

    f = Fleet(db, reports)
    ids = {name: f.crash(name, f"host-{name}", "6.1.0-1") for name in ("gpf", "null", "bug")}
    with db.session() as s:
        null_panic = queries.get_crash(s, ids["null"])["panic"]  # type: ignore[index]
    assert "NULL pointer dereference" in null_panic, null_panic

    def found(q: str) -> list[int]:
        with db.session() as s:
            return [c["id"] for c in queries.list_crashes(s, queries.Filters(text=q)).items]

    assert found("NULL pointer") == [ids["null"]]
    assert found("null POINTER deref") == [ids["null"]], "case-insensitive word prefixes"
    assert found("pointer protection") == [], "every word must match"
    for syntax in ('"', "pointer*", "NEAR(a b)", "a:* | b", "crashes_fts", "' OR 1=1 --", "!!"):
        found(syntax)  # never an error: only letters and digits reach the index
    with db.session() as s:
        buckets_found = queries.list_buckets(s, queries.Filters(text="dereference"))
        assert [b["signature"] for b in buckets_found.items] == [f.sig("null")]
    plan = _plan(db, select(Crash.id).where(queries.text_match(db.engine.dialect.name, "null")))
    if db.engine.dialect.name == "sqlite":
        assert "VIRTUAL TABLE INDEX" in plan and "crashes_fts" in plan, plan
    else:
        assert "ix_crashes_panic_fts" in plan, plan
    # The index follows the rows: a changed panic line, a deleted crash.
    with db.session() as s:
        s.get(Crash, ids["gpf"]).panic = "Kernel panic - not syncing: Fatal exception in interrupt"  # type: ignore[union-attr]
    assert found("fatal exception") == [ids["gpf"]]
    with db.session() as s:
        s.delete(s.get(Crash, ids["null"]))
    assert found("NULL pointer") == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_fulltext_migration_is_reversible(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, reports: dict[str, Any]
) -> None:
    """0004 down and up again: the index goes, the search still answers (unindexed), and
    the rebuilt index holds the crashes stored meanwhile."""
    from sqlalchemy import inspect

    from kcrash.server.db import downgrade

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    db = open_database(Settings(data_dir=tmp_path / "data", database_url=url))
    f = Fleet(db, reports)
    f.crash("gpf", "web-1", "6.1.0-1")
    downgrade(db.engine, "0003")
    names = inspect(db.engine).get_table_names()
    indexes = [i["name"] for i in inspect(db.engine).get_indexes("crashes")]
    assert "crashes_fts" not in names and "ix_crashes_panic_fts" not in indexes
    null_id = f.crash("null", "arm-1", "6.10.0")  # stored while 0004 is not there
    upgrade(db.engine)
    with db.session() as s:
        hits = queries.list_crashes(s, queries.Filters(text="NULL pointer")).items
    assert [c["id"] for c in hits] == [null_id]
    db.engine.dispose()


def test_retention_really_removes_files(db: Database, reports: dict[str, Any]) -> None:
    f = Fleet(db, reports)
    now = dt.datetime.now(dt.timezone.utc)
    old = f.crash("gpf", "web-1", "6.1.0-1", now - dt.timedelta(days=40))
    mid = f.crash("gpf", "web-2", "6.1.0-1", now - dt.timedelta(days=20))
    new = f.crash("null", "web-3", "6.1.0-1", now - dt.timedelta(days=1))
    with db.session() as s:
        paths = {c: Path(s.get(Crash, c).blob_path) for c in (old, mid, new)}  # type: ignore[union-attr,arg-type]
        size_new = s.get(Crash, new).size  # type: ignore[union-attr]
    with db.session() as s:  # the store's id file is old too, and no upload: it stays
        ingest.ensure_store_id(s, f.store.root)
    os.utime(f.store.id_file, (0, 0))
    orphan = f.store.path_for("f" * 64)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"an upload whose row was never committed")
    os.utime(orphan, (0, 0))
    with db.session() as s:
        res = retention.apply(s, f.store, max_age_days=30, max_bytes=size_new)
    assert res.crashes_deleted == 1 and res.files_deleted == 3
    assert not paths[old].exists() and not paths[mid].exists() and not orphan.exists()
    assert f.store.id_file.exists()
    assert paths[new].exists()
    with db.session() as s:
        assert s.get(Crash, old) is None
        kept = s.get(Crash, mid)
        assert kept is not None and kept.blob_path is None and kept.report is not None
        row = queries.get_bucket(s, f.sig("gpf"))
        assert row is not None and row["count"] == 1


def test_tokens_are_stored_hashed(db: Database) -> None:
    with db.session() as s:
        token = auth.create_token(s, "submit", "host web-1")
    with db.session() as s:
        stored = [t.hash for t in s.query(Token)]
        assert token not in stored and auth.hash_token(token) in stored
        found = auth.lookup(s, token)
        assert found is not None and found.role == "submit"
        assert auth.lookup(s, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert auth.role_at_least("admin", "read") and not auth.role_at_least("submit", "read")


def test_metrics_count_from_the_store(db: Database, reports: dict[str, Any]) -> None:
    f = Fleet(db, reports)
    f.crash("gpf", "web-1", "6.1.0-1")
    f.crash("gpf", "web-2", "6.1.0-2")
    text = metrics.render(db.sessions).decode()
    kernel = reports["gpf"]["system"]["release"]
    assert f'kcrash_crashes{{bucket="{f.sig("gpf")}",kernel="{kernel}"}} 2.0' in text
    assert 'kcrash_queue_depth{status="queued"} 0.0' in text
    assert "kcrash_analysis_seconds_count 2.0" in text


def test_new_analysis_version_analyzes_everything_again(
    db: Database, reports: dict[str, Any]
) -> None:
    f = Fleet(db, reports)
    with db.session() as s:
        assert ingest.regroup_if_rules_changed(s) == []  # a new store: nothing to redo
    cid = f.crash("gpf", "web-1", "6.1.0-1")
    with db.session() as s:
        assert ingest.regroup_if_rules_changed(s) == []  # same analysis: nothing to redo
        s.get(Meta, ingest.RULES_KEY).value = "kcrash 0.0.1"  # type: ignore[union-attr]
    with db.session() as s:
        assert ingest.regroup_if_rules_changed(s) == [cid]
        assert s.get(Crash, cid).status == "queued"  # type: ignore[union-attr]
    with db.sessions() as s:
        c = ingest.process_crash(s, cid, db.settings)
        assert c is not None and c.status == "done" and c.bucket.signature == f.sig("gpf")  # type: ignore[union-attr]
    with db.session() as s:
        assert s.get(Meta, ingest.RULES_KEY).value == ingest.analysis_version()  # type: ignore[union-attr]
        assert queries.get_bucket(s, f.sig("gpf"))["count"] == 1  # type: ignore[index]


#: Schema objects made by migrations only: 0002's SQLite panic index, 0004's full-text index
#: (PostgreSQL) and FTS5 table with its shadow tables (SQLite).
MIGRATION_ONLY = {
    "ix_crashes_panic",
    "ix_crashes_panic_fts",
    "crashes_fts",
    *(f"crashes_fts_{t}" for t in ("data", "idx", "content", "docsize", "config")),
}


def _name_of(diff: Any) -> str:
    return str(getattr(diff[1], "name", "")) if isinstance(diff, tuple) else ""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_keep_reports_and_match_the_models(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, reports: dict[str, Any]
) -> None:
    """A store made by the first schema (reports inside crashes) upgrades with its report,
    and the migrated schema is exactly the ORM's (Alembic's own comparison)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from kcrash.server.models import Base, CrashReport

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    engine = make_engine(settings)
    upgrade(engine, "0001")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO crashes (sha256, kind, received_at, status, report, size, attempts)"
                " VALUES (:sha, 'report', :t, 'done', :r, 0, 1)"
            ),
            {
                "sha": "a" * 64,
                "t": dt.datetime.now(dt.timezone.utc),
                "r": json.dumps(reports["gpf"]),
            },
        )
        c.execute(
            text(
                "INSERT INTO bucket_history (crash_id, at, reason)"
                " SELECT id, received_at, 'analysis' FROM crashes"
            )
        )
    upgrade(engine)
    db = open_database(settings)
    with db.session() as s:
        # SQLite rebuilds the crashes table: its children must survive (no cascade).
        assert [h.reason for h in s.query(BucketHistory)] == ["analysis"]
        (row,) = s.query(CrashReport).all()
        assert row.report == reports["gpf"]
        assert s.query(Crash).one().report == reports["gpf"]
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    # The panic-text index exists on SQLite only (0002 says why), the full-text objects of
    # 0004 cannot be declared in the models (it says why); nothing else differs.
    extra = [d for d in diff if _name_of(d) not in MIGRATION_ONLY]
    assert extra == []
    if backend == "sqlite":
        assert "ix_crashes_panic" in [_name_of(d) for d in diff], "the table rebuild kept it"
    engine.dispose()
    db.engine.dispose()


def test_a_worker_finds_uploads_by_hash_under_its_own_mount_point(tmp_path: Path) -> None:
    """The API stored /srv/kcrash/blobs/…; a worker mounts that directory elsewhere: its
    ``--data`` finds the upload by content hash.  Not there at all: BlobUnreachable (the
    crash is left for a worker that sees it), unlike a file retention deleted (None)."""
    from kcrash.server.store import blob_path_for

    data = OOPS.joinpath(LOGS["gpf"]).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    mine = Settings(data_dir=tmp_path / "mnt" / "kcrash")
    blob = blob_path_for(mine.blob_dir, sha)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    crash = Crash(id=7, sha256=sha, blob_path=f"/srv/kcrash/blobs/{sha[:2]}/{sha[2:4]}/{sha}")
    assert ingest.locate_blob(crash, mine) == blob
    other = Settings(data_dir=tmp_path / "empty")
    with pytest.raises(ingest.BlobUnreachable, match="is --data the API server's"):
        ingest.locate_blob(crash, other)
    crash.blob_path = None
    assert ingest.locate_blob(crash, other) is None
