"""Prometheus metrics at ``/metrics`` (read token): what the fleet's crashes look like now.

Two sources.  The database, read at scrape time (``StoreCollector``): crashes by bucket and
kernel, queue depth, failures and analysis time — counted from the stored rows, so they are
right however many API processes and Celery workers share the database.  And counters of
this process (uploads accepted, duplicate, rejected by status), which Prometheus sums over
API processes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .models import FAILED, QUEUED, RUNNING, Bucket, Crash

#: Analysis-time histogram bounds in seconds: a report JSON takes ~0, a log ~1-2 s, a
#: vmcore 5-60 s with debuginfo and minutes on a loaded host.
TIME_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)

UPLOADS = Counter("kcrash_uploads", "Submissions received by this API process", ["outcome"])
ANALYSES = Counter("kcrash_process_analyses", "Analyses finished in this process", ["outcome"])
ANALYSIS_SECONDS = Histogram(
    "kcrash_process_analysis_seconds", "Analysis time in this process", buckets=TIME_BUCKETS
)


class StoreCollector(Collector):
    """Metrics counted from the database at each scrape."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        with self.sessions() as s:
            by = GaugeMetricFamily(
                "kcrash_crashes",
                "Stored crashes by bucket signature and kernel release",
                labels=["bucket", "kernel"],
            )
            rows = s.execute(
                select(Bucket.signature, Crash.kernel_release, func.count(Crash.id))
                .join(Bucket, Crash.bucket_id == Bucket.id)
                .group_by(Bucket.signature, Crash.kernel_release)
            )
            for sig, kernel, n in rows:
                by.add_metric([sig, kernel or ""], n)
            yield by
            depth = GaugeMetricFamily(
                "kcrash_queue_depth", "Crashes waiting for or in analysis", labels=["status"]
            )
            counts = dict(
                s.execute(
                    select(Crash.status, func.count(Crash.id))
                    .where(Crash.status.in_((QUEUED, RUNNING, FAILED)))
                    .group_by(Crash.status)
                ).all()
            )
            for st in (QUEUED, RUNNING):
                depth.add_metric([st], counts.get(st, 0))
            yield depth
            failed = GaugeMetricFamily("kcrash_crashes_failed", "Crashes whose analysis failed")
            failed.add_metric([], counts.get(FAILED, 0))
            yield failed
            cols = [func.sum(case((Crash.analysis_seconds <= b, 1), else_=0)) for b in TIME_BUCKETS]
            row = s.execute(
                select(func.count(Crash.analysis_seconds), func.sum(Crash.analysis_seconds), *cols)
            ).one()
            hist = HistogramMetricFamily(
                "kcrash_analysis_seconds", "Analysis time of stored crashes (seconds)"
            )
            buckets = [(str(float(b)), int(row[2 + i] or 0)) for i, b in enumerate(TIME_BUCKETS)]
            buckets.append(("+Inf", int(row[0] or 0)))
            hist.add_metric([], buckets=buckets, sum_value=float(row[1] or 0))
            yield hist


def render(sessions: Callable[[], Session]) -> bytes:
    """The exposition text: this process's counters plus the store's metrics."""
    from prometheus_client import REGISTRY

    store = CollectorRegistry()
    store.register(StoreCollector(sessions))
    return generate_latest(REGISTRY) + generate_latest(store)
