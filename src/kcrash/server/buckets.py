"""Crashes grouped by signature, with the choices people make on top of the rules.

How a crash finds its bucket (``target_bucket``), in order:

1. a person split it out (``Crash.pinned_bucket_id``): it stays in that bucket;
2. otherwise the bucket of its signature, created on first sight;
3. if a person merged that bucket into another (``Bucket.merged_into``), the chain is
   followed to the bucket it was merged into.

Both human choices are stored apart from the rules' result, so ``regroup`` (after the
diagnosis rules changed and the signatures were recomputed) reapplies them: a merge keeps
pulling the old signature into its target, a split crash stays pinned.  Every move is a
``BucketHistory`` row with its reason.  States: ``open``, ``fixed`` (with ``fixed_in``, a
kernel release; the ``fleet`` branch's alerts order releases), ``ignored``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import BUCKET_STATES, Bucket, BucketHistory, Crash, utcnow

#: Merge chains longer than this are a loop someone made by hand; stop and use the last one.
MAX_MERGE_CHAIN = 32


class BucketError(Exception):
    """A bucket operation a person asked for that cannot be done (becomes a 4xx)."""


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=dt.timezone.utc)
    return t


def _report_title(report: dict[str, Any] | None, signature: str) -> dict[str, Any]:
    verdict = (report or {}).get("verdict") or {}
    site = verdict.get("crash_site") or {}
    culprit = verdict.get("culprit") or {}
    func_name = (culprit.get("function") if isinstance(culprit, dict) else None) or site.get(
        "function"
    )
    module = (culprit.get("module") if isinstance(culprit, dict) else None) or site.get("module")
    sig = (report or {}).get("signature") or {}
    return {
        "title": str(sig.get("title") or verdict.get("title") or signature)[:1000],
        "class_": verdict.get("class"),
        "culprit": str(func_name)[:300] if func_name else None,
        "culprit_module": str(module)[:300] if module else None,
    }


def by_signature(session: Session, signature: str) -> Bucket | None:
    return session.scalars(select(Bucket).where(Bucket.signature == signature)).first()


def resolve(session: Session, bucket: Bucket) -> Bucket:
    """Follow ``merged_into`` to the bucket that really holds the crashes."""
    seen = {bucket.id}
    for _ in range(MAX_MERGE_CHAIN):
        if bucket.merged_into is None:
            return bucket
        nxt = session.get(Bucket, bucket.merged_into)
        if nxt is None or nxt.id in seen:
            return bucket
        seen.add(nxt.id)
        bucket = nxt
    return bucket


def bucket_for_signature(session: Session, signature: str, report: dict[str, Any] | None) -> Bucket:
    """The rules' bucket of a signature, created on first sight (race-safe across workers)."""
    b = by_signature(session, signature)
    if b is None:
        try:
            with session.begin_nested():
                b = Bucket(signature=signature, count=0, state="open", origin="rules")
                for k, v in _report_title(report, signature).items():
                    setattr(b, k, v)
                session.add(b)
        except IntegrityError:
            # Another worker created it between our select and insert.
            b = by_signature(session, signature)
            assert b is not None
    return b


def target_bucket(session: Session, crash: Crash) -> Bucket | None:
    if crash.pinned_bucket_id is not None:
        pinned = session.get(Bucket, crash.pinned_bucket_id)
        if pinned is not None:
            return resolve(session, pinned)
    if not crash.signature:
        return None
    return resolve(session, bucket_for_signature(session, crash.signature, crash.report))


def _seen(crash: Crash) -> dt.datetime:
    return _aware(crash.crashed_at) or _aware(crash.received_at) or utcnow()


def move(session: Session, crash: Crash, new: Bucket | None, reason: str) -> bool:
    """Put a crash in a bucket, keeping counts, first/last seen and history; True if moved."""
    old_id = crash.bucket_id
    new_id = new.id if new is not None else None
    if old_id == new_id:
        return False
    if old_id is not None:
        session.execute(update(Bucket).where(Bucket.id == old_id).values(count=Bucket.count - 1))
    if new is not None:
        seen = _seen(crash)
        session.execute(update(Bucket).where(Bucket.id == new_id).values(count=Bucket.count + 1))
        session.refresh(new)
        if new.first_seen is None or _aware(new.first_seen) > seen:
            new.first_seen = seen
        if new.last_seen is None or _aware(new.last_seen) < seen:
            new.last_seen = seen
        if new.representative_id is None:
            new.representative_id = crash.id
    crash.bucket_id = new_id
    session.add(
        BucketHistory(
            crash_id=crash.id, old_bucket=old_id, new_bucket=new_id, at=utcnow(), reason=reason
        )
    )
    session.flush()
    return True


def assign(session: Session, crash: Crash, reason: str = "analysis") -> Bucket | None:
    """Place a crash where the rules and the people's choices say (idempotent)."""
    target = target_bucket(session, crash)
    move(session, crash, target, reason)
    return target


def refresh_stats(session: Session, bucket_ids: Iterable[int]) -> None:
    """Recompute count, first/last seen and the representative from the crashes themselves."""
    for bid in set(bucket_ids):
        b = session.get(Bucket, bid)
        if b is None:
            continue
        seen = func.coalesce(Crash.crashed_at, Crash.received_at)
        row = session.execute(
            select(func.count(Crash.id), func.min(seen), func.max(seen), func.min(Crash.id)).where(
                Crash.bucket_id == bid
            )
        ).one()
        b.count, b.first_seen, b.last_seen = row[0], row[1], row[2]
        rep = session.get(Crash, b.representative_id) if b.representative_id else None
        if rep is None or rep.bucket_id != bid:
            b.representative_id = row[3]
    session.flush()


def regroup(session: Session, crash_ids: Iterable[int] | None = None) -> int:
    """Re-place crashes (all by default) from their current signatures; returns moves made.

    The caller has recomputed ``Crash.signature`` with the new rules first (the ingest
    module re-analyzes); this only applies rules' signatures plus the human choices.
    """
    q = select(Crash).where(Crash.status == "done")
    if crash_ids is not None:
        q = q.where(Crash.id.in_(list(crash_ids)))
    touched: set[int] = set()
    moved = 0
    for crash in session.scalars(q).all():
        before = crash.bucket_id
        if move(session, crash, target_bucket(session, crash), "regroup"):
            moved += 1
            touched.update(x for x in (before, crash.bucket_id) if x is not None)
    refresh_stats(session, touched)
    return moved


def merge(session: Session, source_sig: str, into_sig: str) -> Bucket:
    """Merge bucket ``source`` into ``into``: its crashes move, its signature leads there."""
    src, dst = by_signature(session, source_sig), by_signature(session, into_sig)
    if src is None or dst is None:
        raise BucketError(f"no bucket {source_sig if src is None else into_sig}")
    if dst.id == src.id:
        raise BucketError("a bucket cannot be merged into itself")
    dst = resolve(session, dst)
    if dst.id == src.id:
        raise BucketError(f"{into_sig} is already merged into {source_sig}")
    src.merged_into = dst.id
    session.flush()
    touched = {src.id, dst.id}
    # Crashes of the source and of buckets merged into it earlier follow.
    for crash in session.scalars(select(Crash).where(Crash.bucket_id == src.id)).all():
        move(session, crash, target_bucket(session, crash), "merge")
    refresh_stats(session, touched)
    return dst


def unmerge(session: Session, signature: str) -> Bucket:
    """Undo a merge: the bucket's own crashes (by signature) come back to it."""
    b = by_signature(session, signature)
    if b is None:
        raise BucketError(f"no bucket {signature}")
    if b.merged_into is None:
        raise BucketError(f"bucket {signature} is not merged")
    old_target = b.merged_into
    b.merged_into = None
    session.flush()
    # Every crash of the old target is placed again: the bucket's own, and those of
    # buckets merged into it earlier, follow their signatures and pins.
    crashes = session.scalars(select(Crash).where(Crash.bucket_id == old_target)).all()
    for crash in crashes:
        move(session, crash, target_bucket(session, crash), "unmerge")
    refresh_stats(session, {b.id, old_target})
    return b


def split(session: Session, signature: str, crash_ids: Iterable[int], title: str = "") -> Bucket:
    """Move the given crashes of a bucket into a new bucket, pinned there for good."""
    src = by_signature(session, signature)
    if src is None:
        raise BucketError(f"no bucket {signature}")
    ids = sorted(set(crash_ids))
    crashes = session.scalars(select(Crash).where(Crash.id.in_(ids))).all() if ids else []
    if not crashes or len(crashes) != len(ids):
        raise BucketError("split needs crash ids that exist")
    if any(c.bucket_id != src.id for c in crashes):
        raise BucketError(f"every crash to split must be in bucket {signature}")
    if len(crashes) == src.count:
        raise BucketError("a split must leave at least one crash in the bucket")
    n = session.scalar(select(func.count(Bucket.id)).where(Bucket.origin == "split")) or 0
    while by_signature(session, f"{src.signature}~{n + 1}") is not None:
        n += 1
    new = Bucket(
        signature=f"{src.signature}~{n + 1}",
        title=(title or f"{src.title} (split)")[:1000],
        class_=src.class_,
        culprit=src.culprit,
        culprit_module=src.culprit_module,
        state="open",
        origin="split",
        count=0,
    )
    session.add(new)
    session.flush()
    for crash in crashes:
        crash.pinned_bucket_id = new.id
        move(session, crash, new, "split")
    refresh_stats(session, {src.id, new.id})
    return new


def set_state(session: Session, signature: str, state: str, fixed_in: str | None = None) -> Bucket:
    b = by_signature(session, signature)
    if b is None:
        raise BucketError(f"no bucket {signature}")
    if state not in BUCKET_STATES:
        raise BucketError(f"state must be one of {', '.join(BUCKET_STATES)}")
    if state == "fixed" and not fixed_in:
        raise BucketError("state fixed needs fixed_in (the kernel release with the fix)")
    b.state = state
    b.fixed_in = fixed_in if state == "fixed" else None
    session.flush()
    return b
