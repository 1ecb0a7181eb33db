"""What the dashboard shows beyond the server's queries: the overview's aggregates.

Lists, filters, pagination, one bucket, one crash and one host come from
:mod:`kcrash.server.queries` (the API's own SQL); this module adds only what no API
answers: crashes per day by class, the buckets that need attention (new, regressed,
spiking), the top buckets by hosts and the kernels with their crash rates.  Each is one
grouped query over indexed columns, so the overview stays within its time budget at
100,000 crashes (bench/dashboard_pages.py measures it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from .. import kversion
from ..models import Bucket, Crash
from ..queries import _hosts_per_bucket, bucket_row, iso

#: A bucket is "new" when its first crash is this recent.
NEW_DAYS = 7
#: Spiking: at least this many crashes in the last day …
SPIKE_MIN = 3
#: … and this many times the bucket's daily average over the week before.
SPIKE_FACTOR = 3.0
#: Rows in each overview table (the full lists are paginated pages of their own).
TOP_N = 10


def _day(v: Any) -> dt.date:
    """SQLite's date() is text, PostgreSQL's is a date: one type for the chart."""
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


@cache
def _parse(release: str) -> kversion.KernelRelease | None:
    return kversion.parse(release)


@cache
def _release_after_or_same(release: str, fixed_in: str) -> bool:
    """A crash on the fix's release or a later one of the same line (unordered: no)."""
    a, b = _parse(release), _parse(fixed_in)
    if a is None or b is None:
        return False
    c = kversion.compare(a, b)
    return c is not None and c >= 0


def per_day_by_class(
    session: Session, days: list[dt.date]
) -> dict[tuple[dt.date, str | None], int]:
    """Crashes received per (day, class) on each of ``days`` (UTC).

    One range query per day rather than one ``GROUP BY date(received_at)``: each walks its
    slice of the (received_at, class, bucket_id) index without computing a date per row,
    half the time at 100,000 crashes, and the same SQL on SQLite and PostgreSQL.
    """
    out: dict[tuple[dt.date, str | None], int] = {}
    one_day = (
        select(Crash.class_, func.count())
        .where(Crash.received_at >= bindparam("start"), Crash.received_at < bindparam("end"))
        .group_by(Crash.class_)
    )
    conn = session.connection()  # Core, not the ORM: 30 small statements, no entities
    for day in days:
        start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        rows = conn.execute(one_day, {"start": start, "end": start + dt.timedelta(days=1)})
        for cls, n in rows:
            out[(day, cls)] = n
    return out


@dataclass
class Attention:
    """Buckets a person should look at first, each with why (in the order added)."""

    by_signature: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.by_signature.values())

    def add(self, b: Bucket, hosts: int, why: str, detail: str = "") -> None:
        row = self.by_signature.get(b.signature)
        if row is None:
            self.by_signature[b.signature] = bucket_row(b, hosts) | {"why": [why], "detail": detail}
        elif why not in row["why"]:
            row["why"].append(why)


def attention(session: Session, now: dt.datetime) -> Attention:
    """Regressed first (a fix did not hold), then spiking, then new buckets."""
    out = Attention()
    live = (Bucket.merged_into.is_(None), Bucket.count > 0, Bucket.state != "ignored")
    # Regressed: a bucket marked fixed in release X crashed again on X or later (one
    # query for every fixed bucket's releases; each release string parsed once).
    fixed = {
        b.id: b for b in session.scalars(select(Bucket).where(*live[:2], Bucket.state == "fixed"))
    }
    pairs = session.execute(
        select(Crash.bucket_id, Crash.kernel_release)
        .where(Crash.bucket_id.in_(list(fixed)), Crash.kernel_release.is_not(None))
        .group_by(Crash.bucket_id, Crash.kernel_release)
    ).all()
    late: dict[int, list[str]] = {}
    for bid, release in pairs:
        if fixed[bid].fixed_in and _release_after_or_same(release, fixed[bid].fixed_in):
            late.setdefault(bid, []).append(release)
    regressed = sorted(
        ((fixed[bid], max(r, key=_parse)) for bid, r in late.items()),
        key=lambda br: iso(br[0].last_seen) or "",
        reverse=True,
    )[:TOP_N]
    # Spiking: the last day against the daily average of the seven days before it.
    day_ago, week_ago = now - dt.timedelta(days=1), now - dt.timedelta(days=1 + 7)
    recent = func.sum(case((Crash.received_at >= day_ago, 1), else_=0))
    rows = session.execute(
        select(Crash.bucket_id, recent, func.count(Crash.id))
        .where(Crash.received_at >= week_ago, Crash.bucket_id.is_not(None))
        .group_by(Crash.bucket_id)
        .having(recent >= SPIKE_MIN)
    ).all()
    spikes = {
        bid: (int(r), (n - int(r)) / 7)
        for bid, r, n in rows
        if int(r) >= SPIKE_FACTOR * max((n - int(r)) / 7, 1 / 7)
    }
    new = session.scalars(
        select(Bucket)
        .where(*live, Bucket.first_seen >= now - dt.timedelta(days=NEW_DAYS))
        .order_by(Bucket.first_seen.desc())
        .limit(TOP_N)
    ).all()
    # Only the biggest spikes are shown: load those buckets, not every candidate.
    top_spikes = sorted(spikes, key=lambda bid: -spikes[bid][0])[: TOP_N * 2]
    spiking = session.scalars(select(Bucket).where(Bucket.id.in_(top_spikes), *live)).all()
    shown = [b.id for b in [*new, *spiking]] + [b.id for b, _ in regressed]
    hosts = _hosts_per_bucket(session, shown)
    for b, release in regressed:
        out.add(b, hosts.get(b.id, 0), "regressed", release)
    for b in sorted(spiking, key=lambda b: -spikes[b.id][0])[:TOP_N]:
        out.add(b, hosts.get(b.id, 0), "spiking", str(spikes[b.id][0]))
    for b in new:
        out.add(b, hosts.get(b.id, 0), "new")
    return out


def top_by_hosts(session: Session) -> list[dict[str, Any]]:
    """Buckets by distinct hosts that ever crashed in them (one pass over an index)."""
    hosts = func.count(func.distinct(Crash.host_id))
    rows = session.execute(
        select(Crash.bucket_id, hosts)
        .where(Crash.bucket_id.is_not(None))
        .group_by(Crash.bucket_id)
        .order_by(hosts.desc())
        .limit(TOP_N * 3)
    ).all()
    ids = [r[0] for r in rows]
    by_id = {b.id: b for b in session.scalars(select(Bucket).where(Bucket.id.in_(ids)))}
    out = []
    for bid, n in rows:
        b = by_id.get(bid)
        if b is not None and b.merged_into is None:
            out.append(bucket_row(b, n))
    return out[:TOP_N]


def kernels(session: Session, since: dt.datetime) -> list[dict[str, Any]]:
    """Kernel releases with a crash since ``since``: crashes, hosts, crashes per host (all
    time, grouped along one index).

    The server knows only hosts that sent a crash, so the rate is crashes per crashing
    host on that release — enough to see that a rollout made one release worse.
    """
    rows = session.execute(
        select(
            Crash.kernel_release,
            func.count(Crash.id),
            func.count(func.distinct(Crash.host_id)),
            func.max(Crash.received_at),
        )
        .where(Crash.kernel_release.is_not(None))
        .group_by(Crash.kernel_release)
        .having(func.max(Crash.received_at) >= since)
    ).all()
    out = [
        {
            "kernel_release": k,
            "crashes": n,
            "hosts": h,
            "rate": n / h if h else float(n),
            "last": iso(last),
        }
        for k, n, h, last in rows
    ]
    # Newest first; strings that are no kernel release at the end.
    releases = [r["kernel_release"] for r in out]
    order = {r: i for i, r in enumerate(kversion.sort_releases(releases))}
    out.sort(key=lambda r: (_parse(r["kernel_release"]) is None, -order[r["kernel_release"]]))
    return out[: TOP_N * 2]
