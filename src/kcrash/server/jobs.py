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

from .config import Settings
from .db import Database
from .ingest import process_crash, unfinished

log = logging.getLogger("kcrash.server")


class JobQueue(Protocol):
    def enqueue(self, crash_id: int) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalPool:
    """Threads that run :func:`process_crash` for queued crash ids (embedded server)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
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
                    process_crash(s, crash_id, self.settings)
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
