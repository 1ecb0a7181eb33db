"""Searches the API and the dashboard share: buckets, crashes, hosts; JSON rows and CSV.

Every list takes the same filters (``Filters``) and returns a ``Page`` (items, total,
limit, offset), so the dashboard's pagination and the API's are the same SQL.  Values are
plain JSON types (ISO 8601 times in UTC) so a row is the API's answer as it stands.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select, text
from sqlalchemy.orm import Session

from .models import Bucket, BucketHistory, Crash, CrashReport, Host

#: Largest page a client may ask for (a CSV export walks pages itself).
MAX_LIMIT = 1000
#: Sort keys of bucket lists: name -> (column, descending).
BUCKET_SORTS = {
    "last_seen": (Bucket.last_seen, True),
    "first_seen": (Bucket.first_seen, True),
    "count": (Bucket.count, True),
    "signature": (Bucket.signature, False),
}


@dataclass
class Filters:
    """What a person filters by; every field optional, all given ones must match."""

    class_: str | None = None
    module: str | None = None
    kernel: str | None = None
    host: str | None = None
    state: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: Words searched in the panic line (each a word prefix, all of them; the full-text
    #: index of migration 0004) and in the bucket title (substring).
    text: str | None = None
    status: str | None = None


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
        }


def iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _like(s: str) -> str:
    return "%" + s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


#: Filters that are one column equal to the value, per table: (Filters field, column).
CRASH_EQUAL = (
    ("class_", Crash.class_),
    ("module", Crash.culprit_module),  # the culprit's module, as bucketed
    ("kernel", Crash.kernel_release),
    ("status", Crash.status),
)
BUCKET_EQUAL = (
    ("class_", Bucket.class_),
    ("state", Bucket.state),
    ("module", Bucket.culprit_module),
)


def _equal(q: Select[Any], f: Filters, table: tuple[tuple[str, Any], ...]) -> Select[Any]:
    for field, col in table:
        value = getattr(f, field)
        if value:
            q = q.where(col == value)
    return q


#: A word of a search as both full-text indexes split text: letters and digits (FTS5's
#: unicode61 tokenizer and PostgreSQL's parser both cut at ``_`` and punctuation).
WORD = re.compile(r"[^\W_]+")
#: Words of one search used at most (a pasted stack trace is not a query).
MAX_WORDS = 16


def search_words(s: str) -> list[str]:
    return WORD.findall(s.lower())[:MAX_WORDS]


def text_match(dialect: str, s: str) -> ColumnElement[bool]:
    """Crashes whose panic line holds every word of ``s`` as a word prefix ("deref" finds
    "dereference"), through the database's full-text index (migration 0004).  The query
    is built from letters and digits only, so no search string is FTS or tsquery syntax.
    A search with no word at all ("!!!") falls back to a substring scan."""
    words = search_words(s)
    if not words:
        return func.lower(Crash.panic).like(_like(s.lower()), escape="\\")
    if dialect == "sqlite":
        match = " ".join(f'"{w}"*' for w in words)
        hits = (
            select(literal_column("rowid"))
            .select_from(text("crashes_fts"))
            .where(text("crashes_fts MATCH :fts_query").bindparams(fts_query=match))
        )
        return Crash.id.in_(hits)
    if dialect == "postgresql":
        # The indexed expression of migration 0004 (PG_EXPR), repeated exactly: PostgreSQL
        # uses an expression index only for the same expression (test_server_search).
        query = " & ".join(f"{w}:*" for w in words)
        return literal_column("to_tsvector('simple', coalesce(crashes.panic, ''))").op("@@")(
            func.to_tsquery(literal_column("'simple'"), query)
        )
    return func.lower(Crash.panic).like(_like(s.lower()), escape="\\")


def _crash_filter(q: Select[Any], f: Filters, dialect: str = "") -> Select[Any]:
    q = _equal(q, f, CRASH_EQUAL)
    if f.host:
        q = q.where(Crash.host_id.in_(select(Host.id).where(Host.name == f.host)))
    seen = func.coalesce(Crash.crashed_at, Crash.received_at)
    if f.since:
        q = q.where(seen >= f.since)
    if f.until:
        q = q.where(seen < f.until)
    if f.text:
        q = q.where(text_match(dialect, f.text))
    return q


def _crash_level(f: Filters) -> bool:
    """Filters that need the crashes of a bucket (not only the bucket row)."""
    return bool(f.kernel or f.host or f.since or f.until or f.module or f.text)


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def bucket_row(b: Bucket, hosts: int) -> dict[str, Any]:
    return {
        "signature": b.signature,
        "title": b.title,
        "class": b.class_,
        "culprit": b.culprit,
        "culprit_module": b.culprit_module,
        "count": b.count,
        "hosts": hosts,
        "first_seen": iso(b.first_seen),
        "last_seen": iso(b.last_seen),
        "state": b.state,
        "fixed_in": b.fixed_in,
        "origin": b.origin,
    }


def _hosts_per_bucket(session: Session, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(Crash.bucket_id, func.count(func.distinct(Crash.host_id)))
        .where(Crash.bucket_id.in_(ids))
        .group_by(Crash.bucket_id)
    )
    return {bid: n for bid, n in rows}


def list_buckets(
    session: Session,
    f: Filters | None = None,
    *,
    sort: str = "last_seen",
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Buckets holding crashes (merged-away buckets are not listed), filtered and paged."""
    f = f or Filters()
    dialect = session.get_bind().dialect.name
    q = _equal(
        select(Bucket).where(Bucket.merged_into.is_(None), Bucket.count > 0), f, BUCKET_EQUAL
    )
    if f.text:
        q = q.where(
            or_(
                func.lower(Bucket.title).like(_like(f.text.lower()), escape="\\"),
                Bucket.id.in_(
                    _crash_filter(select(Crash.bucket_id), Filters(text=f.text), dialect)
                ),
            )
        )
    if _crash_level(Filters(kernel=f.kernel, host=f.host, since=f.since, until=f.until)):
        sub = _crash_filter(
            select(Crash.bucket_id),
            Filters(kernel=f.kernel, host=f.host, since=f.since, until=f.until),
        )
        q = q.where(Bucket.id.in_(sub))
    col, desc = BUCKET_SORTS.get(sort, BUCKET_SORTS["last_seen"])
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    q = q.order_by(col.desc() if desc else col.asc(), Bucket.id.desc())
    limit = _limit(limit)
    rows = session.scalars(q.limit(limit).offset(max(0, offset))).all()
    hosts = _hosts_per_bucket(session, [b.id for b in rows])
    return Page([bucket_row(b, hosts.get(b.id, 0)) for b in rows], total, limit, offset)


def _distinct_counts(
    session: Session, col: Any, bucket_id: int, n: int = 50
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(col, func.count(Crash.id))
        .select_from(Crash)
        .outerjoin(Host, Crash.host_id == Host.id)
        .where(Crash.bucket_id == bucket_id)
        .group_by(col)
        .order_by(func.count(Crash.id).desc())
        .limit(n)
    )
    return [{"value": v, "count": c} for v, c in rows if v is not None]


def _modules(report: dict[str, Any] | None) -> list[str]:
    mods = ((report or {}).get("context") or {}).get("modules") or []
    out = []
    for m in mods:
        name = m.get("name") if isinstance(m, dict) else m
        if isinstance(name, str):
            out.append(name)
    return out


def get_bucket(session: Session, signature: str, *, crashes: int = 50) -> dict[str, Any] | None:
    """One bucket with its facts tables (hosts, kernels, hardware, taints, modules) and a
    representative report; a merged-away signature answers with the bucket it leads to."""
    from .buckets import by_signature, resolve

    b = by_signature(session, signature)
    if b is None:
        return None
    b = resolve(session, b)
    hosts = _hosts_per_bucket(session, [b.id]).get(b.id, 0)
    row = bucket_row(b, hosts)
    row["requested"] = signature
    row["merged"] = list(
        session.scalars(select(Bucket.signature).where(Bucket.merged_into == b.id))
    )
    row["host_names"] = _distinct_counts(session, Host.name, b.id)
    row["kernels"] = _distinct_counts(session, Crash.kernel_release, b.id)
    row["hardware"] = _distinct_counts(session, Host.hardware, b.id)
    row["taints"] = _distinct_counts(session, Crash.taint, b.id)
    rep = session.get(Crash, b.representative_id) if b.representative_id else None
    if rep is None or rep.bucket_id != b.id:
        rep = session.scalars(select(Crash).where(Crash.bucket_id == b.id).limit(1)).first()
    row["representative"] = crash_row(rep, report=True) if rep else None
    modules: dict[str, int] = {}
    for rep_report in session.scalars(
        select(CrashReport.report)
        .join(Crash, Crash.id == CrashReport.crash_id)
        .where(Crash.bucket_id == b.id)
        .order_by(Crash.id.desc())
        .limit(100)
    ):
        for m in _modules(rep_report):
            modules[m] = modules.get(m, 0) + 1
    row["modules"] = [
        {"value": k, "count": v} for k, v in sorted(modules.items(), key=lambda kv: -kv[1])[:50]
    ]
    row["crashes"] = list_crashes(session, bucket_id=b.id, limit=crashes).as_dict()
    return row


def crash_row(c: Crash, *, report: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": c.id,
        "sha256": c.sha256,
        "kind": c.kind,
        "status": c.status,
        "error": c.error,
        "host": c.host.name if c.host else None,
        "received_at": iso(c.received_at),
        "crashed_at": iso(c.crashed_at),
        "kernel_release": c.kernel_release,
        "signature": c.signature,
        "bucket": c.bucket.signature if c.bucket else None,
        "class": c.class_,
        "culprit_module": c.culprit_module,
        "taint": c.taint,
        "panic": c.panic,
        "size": c.size,
        "analysis_seconds": c.analysis_seconds,
    }
    if report:
        row["report"] = c.report
    return row


def list_crashes(
    session: Session,
    f: Filters | None = None,
    *,
    bucket_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    q = _crash_filter(select(Crash), f or Filters(), session.get_bind().dialect.name)
    if bucket_id is not None:
        q = q.where(Crash.bucket_id == bucket_id)
    # Counted on the index, not on a subquery of whole rows.
    total = session.scalar(q.with_only_columns(func.count(Crash.id))) or 0
    limit = _limit(limit)
    rows = session.scalars(
        q.order_by(Crash.received_at.desc(), Crash.id.desc()).limit(limit).offset(max(0, offset))
    ).all()
    return Page([crash_row(c) for c in rows], total, limit, offset)


def get_crash(session: Session, crash_id: int) -> dict[str, Any] | None:
    c = session.get(Crash, crash_id)
    if c is None:
        return None
    row = crash_row(c, report=True)
    row["history"] = [
        {
            "old_bucket": h.old_bucket,
            "new_bucket": h.new_bucket,
            "at": iso(h.at),
            "reason": h.reason,
        }
        for h in session.scalars(
            select(BucketHistory).where(BucketHistory.crash_id == c.id).order_by(BucketHistory.id)
        )
    ]
    return row


def list_hosts(session: Session, *, limit: int = 50, offset: int = 0) -> Page:
    q = (
        select(Host, func.count(Crash.id), func.max(Crash.received_at))
        .outerjoin(Crash, Crash.host_id == Host.id)
        .group_by(Host.id)
    )
    total = session.scalar(select(func.count(Host.id))) or 0
    limit = _limit(limit)
    rows = session.execute(
        q.order_by(func.max(Crash.received_at).desc(), Host.id).limit(limit).offset(max(0, offset))
    ).all()
    items = [host_row(h) | {"crashes": n, "last_crash": iso(last)} for h, n, last in rows]
    return Page(items, total, limit, offset)


def host_row(h: Host) -> dict[str, Any]:
    return {
        "name": h.name,
        "machine_id": h.machine_id,
        "distro": h.distro,
        "hardware": h.hardware,
    }


def host_history(
    session: Session, name: str, *, limit: int = 50, offset: int = 0
) -> dict[str, Any] | None:
    """A host's crashes, newest first, and the kernels it ran (first and last crash on each)."""
    h = session.scalars(select(Host).where(Host.name == name)).first()
    if h is None:
        return None
    row = host_row(h)
    row["crashes"] = list_crashes(session, Filters(host=name), limit=limit, offset=offset).as_dict()
    row["kernels"] = [
        {"kernel_release": k, "crashes": n, "first": iso(a), "last": iso(b)}
        for k, n, a, b in session.execute(
            select(
                Crash.kernel_release,
                func.count(Crash.id),
                func.min(Crash.received_at),
                func.max(Crash.received_at),
            )
            .where(Crash.host_id == h.id)
            .group_by(Crash.kernel_release)
            .order_by(func.min(Crash.received_at))
        )
    ]
    return row


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV with a header; a cell starting with = + - @ gets a leading quote so a
    crash's text cannot run as a formula in a spreadsheet (CSV injection)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(columns)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            s = "" if v is None else str(v)
            if s[:1] in ("=", "+", "-", "@", "\t", "\r"):
                s = "'" + s
            cells.append(s)
        w.writerow(cells)
    return out.getvalue()


BUCKET_CSV = (
    "signature",
    "title",
    "class",
    "culprit",
    "culprit_module",
    "count",
    "hosts",
    "first_seen",
    "last_seen",
    "state",
    "fixed_in",
)
CRASH_CSV = (
    "id",
    "sha256",
    "kind",
    "status",
    "host",
    "received_at",
    "crashed_at",
    "kernel_release",
    "bucket",
    "class",
    "culprit_module",
    "taint",
    "panic",
    "error",
)
