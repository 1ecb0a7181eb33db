"""The deployment's job queue: Celery on a Redis broker, run by ``kcrash worker`` processes.

Why Celery: the analysis of a vmcore takes minutes and gigabytes, so a fleet needs it on as
many machines as it takes, and Celery with Redis is the existing, operated engine for that.
What makes it lose nothing:

- ``acks_late``: a message is acknowledged when the analysis has ended, not when it starts;
  a worker killed mid-analysis leaves it unacknowledged, and Redis hands it to another worker
  after the visibility timeout.
- ``reject_on_worker_lost``: when only the pool process dies (OOM killer, ``kill -9`` of the
  child), the worker puts the message back at once instead of acknowledging it as failed.
- ``prefetch 1``: a worker holds one waiting message per process, so a dead worker strands
  little and a long analysis does not hold the queue behind it.
- bounded work: the analysis itself runs in a child with time and memory limits
  (:func:`analysis.analyze_file`); the task's hard time limit is above that; a crash whose
  analysis was interrupted :data:`MAX_DELIVERIES` times is marked failed instead of killing
  workers forever; database errors are retried :data:`MAX_RETRIES` times with back-off.
- the database is the memory: the API commits the crash row before it sends the message, and
  a crash still ``queued`` (its message never sent: broker down, API killed in between) is
  sent again by every API start and by every worker start.

The task does nothing but call :func:`ingest.process_crash`, which is idempotent.  Workers
read uploads from the blob store by path: run them on the API's machine or mount its data
directory at the same path (NFS) on theirs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from . import alerts
from .config import Settings
from .db import Database, open_database
from .ingest import BlobUnreachable, process_crash
from .models import DONE, FAILED, QUEUED, RUNNING, Crash, utcnow

log = logging.getLogger("kcrash.worker")

QUEUE = "kcrash.analysis"
TASK = "kcrash.process_crash"
#: Deliveries of one crash that ended with its worker dead before it is given up.
MAX_DELIVERIES = 3
#: Retries of a task whose database was unreachable (not analysis failures: those are final).
MAX_RETRIES = 5
#: A queued crash older than this was not sent (or its message was lost): send it again.
STALE_QUEUED = dt.timedelta(seconds=60)


def visibility_timeout(settings: Settings) -> float:
    """Seconds before Redis re-delivers an unacknowledged message: longer than the longest
    analysis, or a slow analysis would be handed to a second worker while still running."""
    env = os.environ.get("KCRASH_VISIBILITY_TIMEOUT")
    if env:
        return float(env)
    return settings.limits.analysis_timeout + 300.0


def _transport_options(visibility: float) -> dict[str, float]:
    """kombu's Redis transport sweeps for expired unacknowledged messages every
    ``interval × throttle`` seconds (10 × 10 by default): scaled to the visibility timeout so
    that a dead worker's analysis is redelivered soon after it expires, not minutes later."""
    interval = max(1.0, min(10.0, visibility / 5))
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": interval,
        "unacked_restore_throttle": 1,
    }


def make_app(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise ValueError("the Celery queue needs a broker URL (redis://…)")
    app = Celery("kcrash", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_time_limit=settings.limits.analysis_timeout + 120,
        broker_transport_options=_transport_options(visibility_timeout(settings)),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_serializer="json",
        accept_content=["json"],
    )
    _register(app)
    app.conf.kcrash_settings = settings
    app.conf.kcrash_alerts = alerts.load_config(
        settings.alerts_file or os.environ.get("KCRASH_ALERTS")
    )
    return app


_DB: dict[str, Database] = {}


def _database(settings: Settings) -> Database:
    """One engine per worker process (created after the fork: engines do not survive one)."""
    key = f"{os.getpid()}:{settings.db_url}"
    if key not in _DB:
        _DB[key] = open_database(settings, migrate=False)
    return _DB[key]


def run_task(
    settings: Settings, crash_id: int, alerts_config: alerts.AlertConfig | None = None
) -> str:
    """The body of the Celery task, callable without Celery; returns the crash's status."""
    db = _database(settings)
    with db.sessions() as s:
        crash = s.get(Crash, crash_id)
        if crash is None:
            return "gone"
        if crash.status == RUNNING and (crash.attempts or 0) >= MAX_DELIVERIES:
            crash.status = FAILED
            crash.error = (
                f"the analysis was interrupted {crash.attempts} times (its worker died each "
                "time); not tried again"
            )
            s.commit()
            return FAILED
        was_done = crash.status == DONE
        done = process_crash(s, crash_id, settings)
        if done is None:
            return "gone"
        status = done.status
    if alerts_config is not None and status == DONE and not was_done:
        alerts.notify_after_analysis(db.sessions, crash_id, alerts_config)
    return status


def _register(app: Celery) -> None:
    @app.task(name=TASK, bind=True, max_retries=MAX_RETRIES)
    def process(self: Any, crash_id: int) -> str:
        try:
            return run_task(app.conf.kcrash_settings, int(crash_id), app.conf.kcrash_alerts)
        except DBAPIError as e:  # the database went away: try later, a bounded number of times
            log.warning("crash %s: database error, retrying: %s", crash_id, e)
            raise self.retry(exc=e, countdown=min(60, 5 * 2**self.request.retries)) from e
        except BlobUnreachable as e:  # not this worker's fault, nor the crash's: later, or
            # another worker; after the retries the crash stays queued (sent again at starts)
            log.error("%s", e)
            raise self.retry(exc=e, countdown=60) from e


def stale_queued(db: Database, older_than: dt.timedelta = STALE_QUEUED) -> list[int]:
    """Crashes queued for longer than ``older_than``: their message may never have been sent."""
    cutoff = utcnow() - older_than
    with db.session() as s:
        q = select(Crash.id).where(Crash.status == QUEUED, Crash.received_at <= cutoff)
        return list(s.scalars(q.order_by(Crash.id)))


class CeleryQueue:
    """The API's :class:`jobs.JobQueue` when ``--broker`` is given: send, never run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_app(settings)

    def enqueue(self, crash_id: int) -> None:
        try:
            self.app.send_task(TASK, args=[crash_id], queue=QUEUE)
        except Exception as e:  # broker down: the crash stays queued and is sent again later
            log.error("crash %s: cannot reach the broker (%s); it stays queued", crash_id, e)

    def start(self) -> None:
        """Send again what a killed API process committed but may not have sent."""
        db = open_database(self.settings, migrate=False)
        try:
            for crash_id in stale_queued(db, dt.timedelta(0)):
                self.enqueue(crash_id)
        finally:
            db.engine.dispose()

    def stop(self) -> None:
        self.app.pool.force_close_all()
