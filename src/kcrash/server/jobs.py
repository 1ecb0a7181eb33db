"""Where analyses run: the ``JobQueue`` protocol and the embedded ``LocalPool``.

The API only calls ``enqueue(crash_id)`` after the crash row is committed.  In the embedded
default the pool is a few threads in the server process, each driving one analysis child
process at a time (the child is where the work and the risk are; a thread only waits for
it).  The deployment's queue is Celery on Redis (``celery_app.CeleryQueue``, branch
``fleet``).  Nothing is lost to a kill: the database is the queue's memory — at start the
pool enqueues every crash still ``queued`` or ``running``.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from . import alerts
from .config import Settings
from .db import Database
from .ingest import BlobUnreachable, process_crash, unfinished
from .models import DONE, FAILED, Crash

log = logging.getLogger("kcrash.server")


class JobQueue(Protocol):
    def enqueue(self, crash_id: int) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalPool:
    """Threads that run :func:`process_crash` for queued crash ids (embedded server), and
    send the alerts of each newly analyzed crash, as the Celery workers do."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.alerts = alerts.load_config(settings.alerts_file)
        self.q: queue.Queue[int | None] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.pending: set[int] = set()
        self.lock = threading.Lock()

    def enqueue(self, crash_id: int) -> None:
        with self.lock:
            if crash_id in self.pending:
                return
            self.pending.add(crash_id)
        self.q.put(crash_id)

    def start(self) -> None:
        for i in range(max(1, self.settings.workers)):
            t = threading.Thread(target=self._run, name=f"kcrash-analysis-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        with self.db.session() as s:
            for crash_id in unfinished(s):
                self.enqueue(crash_id)

    def stop(self) -> None:
        for _ in self.threads:
            self.q.put(None)
        for t in self.threads:
            t.join(timeout=5)

    def idle(self) -> bool:
        with self.lock:
            return not self.pending

    def _run(self) -> None:
        while True:
            crash_id = self.q.get()
            if crash_id is None:
                return
            try:
                with self.db.sessions() as s:
                    before = s.get(Crash, crash_id)
                    was_done = before is not None and before.status == DONE
                    done = process_crash(s, crash_id, self.settings)
                    status = done.status if done is not None else None
                if self.alerts is not None and status == DONE and not was_done:
                    alerts.notify_after_analysis(self.db.sessions, crash_id, self.alerts)
            except BlobUnreachable as e:  # the server's own store lost the file
                log.error("%s", e)
                with self.db.session() as s:
                    crash = s.get(Crash, crash_id)
                    if crash is not None:
                        crash.status, crash.error = FAILED, "the uploaded file is missing"
            except Exception:  # one crash's bug must not stop the pool
                log.exception("analysis of crash %s failed", crash_id)
            finally:
                with self.lock:
                    self.pending.discard(crash_id)


def make_queue(db: Database, settings: Settings) -> JobQueue:
    """LocalPool by default; Celery when a broker is configured (branch ``fleet``)."""
    if settings.broker_url:
        from . import celery_app  # type: ignore[attr-defined]

        return celery_app.CeleryQueue(settings)  # type: ignore[no-any-return]
    return LocalPool(db, settings)
