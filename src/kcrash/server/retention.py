"""Retention: by age (whole crashes go) and by size (the oldest stored files go).

Dumps hold secrets, so "deleted" must mean the bytes are gone: a crash past the age limit
loses its row, its history and its file (unlinked, and the empty fan-out directories
with it); when the stored files exceed the size limit the oldest analyzed crashes lose
their file but keep their report and bucket (the report is what the fleet's history needs
and is small; ``blob_path`` becomes empty and the dump download answers 410).  Uploads a
killed server accepted into the store but never recorded are swept as orphans.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from . import buckets
from .models import DONE, FAILED, BucketHistory, Crash, utcnow
from .store import BlobStore

#: An orphan blob younger than this may be an upload whose row is being committed.
ORPHAN_GRACE = dt.timedelta(hours=1)


@dataclass
class RetentionResult:
    crashes_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0


def expire_by_age(
    session: Session, store: BlobStore, days: float, now: dt.datetime
) -> RetentionResult:
    res = RetentionResult()
    cutoff = now - dt.timedelta(days=days)
    old = session.scalars(select(Crash).where(Crash.received_at < cutoff)).all()
    touched: set[int] = set()
    for crash in old:
        if crash.blob_path and not _shared(session, crash):
            freed = store.delete(crash.blob_path)
            res.files_deleted += freed > 0
            res.bytes_freed += freed
        if crash.bucket_id is not None:
            touched.add(crash.bucket_id)
        session.execute(delete(BucketHistory).where(BucketHistory.crash_id == crash.id))
        session.delete(crash)
        res.crashes_deleted += 1
    session.flush()
    buckets.refresh_stats(session, touched)
    return res


def _shared(session: Session, crash: Crash) -> bool:
    """Content addressing means one file per content; only one row holds it (sha256 is
    unique), but stay safe if a path is ever reused."""
    n = session.scalar(
        select(func.count(Crash.id)).where(Crash.blob_path == crash.blob_path, Crash.id != crash.id)
    )
    return bool(n)


def cap_size(session: Session, store: BlobStore, max_bytes: int) -> RetentionResult:
    res = RetentionResult()
    total = (
        session.scalar(
            select(func.coalesce(func.sum(Crash.size), 0)).where(Crash.blob_path.is_not(None))
        )
        or 0
    )
    if total <= max_bytes:
        return res
    oldest = session.scalars(
        select(Crash)
        .where(Crash.blob_path.is_not(None), Crash.status.in_((DONE, FAILED)))
        .order_by(Crash.received_at, Crash.id)
    )
    for crash in oldest:
        if total <= max_bytes:
            break
        assert crash.blob_path is not None
        freed = store.delete(crash.blob_path)
        res.files_deleted += freed > 0
        res.bytes_freed += freed
        total -= crash.size
        crash.blob_path = None
    session.flush()
    return res


def sweep_orphans(session: Session, store: BlobStore, now: dt.datetime) -> RetentionResult:
    res = RetentionResult()
    known = set(session.scalars(select(Crash.blob_path).where(Crash.blob_path.is_not(None))))
    for dirpath, dirs, files in os.walk(store.root):
        if Path(dirpath) == store.tmp:
            dirs.clear()
            continue
        for name in files:
            p = os.path.join(dirpath, name)
            if p in known or p == str(store.id_file):  # the store's id is no upload
                continue
            try:
                mtime = dt.datetime.fromtimestamp(os.stat(p).st_mtime, dt.timezone.utc)
            except FileNotFoundError:
                continue
            if now - mtime > ORPHAN_GRACE:
                freed = store.delete(p)
                res.files_deleted += freed > 0
                res.bytes_freed += freed
    return res


def apply(
    session: Session,
    store: BlobStore,
    *,
    max_age_days: float | None,
    max_bytes: int | None,
    now: dt.datetime | None = None,
) -> RetentionResult:
    """Run every retention rule once; the caller commits."""
    now = now or utcnow()
    total = RetentionResult()
    parts = [sweep_orphans(session, store, now)]
    if max_age_days is not None:
        parts.append(expire_by_age(session, store, max_age_days, now))
    if max_bytes is not None:
        parts.append(cap_size(session, store, max_bytes))
    for p in parts:
        total.crashes_deleted += p.crashes_deleted
        total.files_deleted += p.files_deleted
        total.bytes_freed += p.bytes_freed
    return total
