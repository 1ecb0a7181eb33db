"""From an accepted upload to a bucketed crash: ``record_upload`` then ``process_crash``.

``record_upload`` runs in the API process while the client waits (it only writes rows);
``process_crash`` runs later in a pool thread (embedded) or a Celery worker (deployment),
and is idempotent: a crash already ``done`` is left alone, a crash found ``running``
(its worker was killed) is simply analyzed again.  The report is the child process's JSON
(:mod:`analysis`); the columns copied out of it are only what queries filter on.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import buckets
from .analysis import AnalysisError, analyze_file
from .config import Settings, default_data_dir
from .models import DONE, FAILED, QUEUED, RUNNING, Crash, Host, Meta, utcnow
from .store import STORE_ID_FILE, blob_path_for

#: Host facts a submission may carry (header ``X-Kcrash-<Name>`` or form field ``<name>``).
HOST_FIELDS = ("host", "machine_id", "kernel_release", "distro", "hardware")

#: crash's ``sys`` DATE format, the one kcrash's report carries in system.date.
CRASH_DATE_FORMATS = ("%a %b %d %H:%M:%S %Z %Y", "%a %b %d %H:%M:%S %Y")


def find_host(session: Session, facts: dict[str, str]) -> Host | None:
    """The host of a submission, created or updated from its facts (None without a name)."""
    name = facts.get("host") or ""
    machine_id = facts.get("machine_id") or ""
    if not name and not machine_id:
        return None
    key = f"machine-id:{machine_id}" if machine_id else f"name:{name}"
    host = session.scalars(select(Host).where(Host.key == key)).first()
    if host is None:
        try:
            with session.begin_nested():
                host = Host(key=key, name=name or machine_id, machine_id=machine_id or None)
                session.add(host)
        except IntegrityError:
            host = session.scalars(select(Host).where(Host.key == key)).one()
    if name:
        host.name = name
    for field in ("distro", "hardware"):
        if facts.get(field):
            setattr(host, field, facts[field])
    return host


def record_upload(
    session: Session,
    *,
    sha256: str,
    kind: str,
    blob_path: Path,
    size: int,
    facts: dict[str, str],
) -> tuple[Crash, bool]:
    """The crash row of an accepted upload, and whether it is new (False: a duplicate)."""
    existing = session.scalars(select(Crash).where(Crash.sha256 == sha256)).first()
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            crash = Crash(
                sha256=sha256,
                kind=kind,
                host=find_host(session, facts),
                received_at=utcnow(),
                kernel_release=facts.get("kernel_release") or None,
                status=QUEUED,
                blob_path=str(blob_path),
                size=size,
                attempts=0,
            )
            session.add(crash)
    except IntegrityError:
        # The same dump from two submitters at once: one row.
        return session.scalars(select(Crash).where(Crash.sha256 == sha256)).one(), False
    return crash, True


def _crash_time(report: dict[str, Any]) -> dt.datetime | None:
    date = ((report.get("system") or {}).get("date") or "").strip()
    for fmt in CRASH_DATE_FORMATS:
        try:
            t = dt.datetime.strptime(date, fmt)
        except ValueError:
            continue
        return t.replace(tzinfo=dt.timezone.utc)
    return None


def apply_report(crash: Crash, report: dict[str, Any]) -> None:
    """Copy what queries filter on out of the report."""
    verdict = report.get("verdict") or {}
    site = verdict.get("crash_site") or {}
    evidence = report.get("evidence") or {}
    system = report.get("system") or {}
    sig = report.get("signature") or {}
    crash.report = report
    crash.signature = str(sig.get("id"))[:100]
    crash.class_ = str(verdict.get("class") or "")[:100] or None
    module = site.get("module") if isinstance(site, dict) else None
    crash.culprit_module = str(module)[:300] if module else None
    taint = evidence.get("taint") or (sig.get("attributes") or {}).get("taint")
    crash.taint = str(taint)[:100] if taint else None
    panic = evidence.get("panic_message") or evidence.get("header") or system.get("panic")
    crash.panic = str(panic)[:2000] if panic else None
    # The release the dump or log itself names wins over the one the host sent: it is the
    # kernel that crashed, while a host may already run another one when it submits.
    release = system.get("release") or (sig.get("attributes") or {}).get("release")
    if release:
        crash.kernel_release = str(release)[:300]
    crash.crashed_at = crash.crashed_at or _crash_time(report)


class BlobUnreachable(Exception):
    """The crash's upload is not visible to this process: its ``--data`` is not the API's
    blob store (a worker without the shared directory).  Not the crash's fault: it is left
    as it was, for a process that can read it."""


def locate_blob(crash: Crash, settings: Settings) -> Path | None:
    """The upload of a crash as this process sees it: under its own ``--data`` by content
    hash, else at the path the API stored; None when retention deleted it."""
    if not crash.blob_path:
        return None
    for path in (blob_path_for(settings.blob_dir, crash.sha256), Path(crash.blob_path)):
        if path.is_file():
            return path
    raise BlobUnreachable(
        f"crash {crash.id}: its upload is not under {settings.blob_dir} (is --data the API "
        "server's data directory, or its mount point?)"
    )


def process_crash(
    session: Session, crash_id: int, settings: Settings | None = None, *, again: bool = False
) -> Crash | None:
    """Analyze one crash, store its report and put it in its bucket.

    Safe to run twice and after a kill: ``done`` crashes are skipped unless ``again``
    (regrouping with new rules); each state change is committed, so a killed worker leaves
    the crash ``running`` and the next start or Celery's redelivery runs it again.
    """
    settings = settings or Settings(data_dir=default_data_dir())
    crash = session.get(Crash, crash_id)
    if crash is None or (crash.status == DONE and not again):
        return crash
    blob = locate_blob(crash, settings)  # BlobUnreachable leaves the crash untouched
    crash.status = RUNNING
    crash.attempts = (crash.attempts or 0) + 1
    crash.error = None
    session.commit()
    from . import metrics

    lim = settings.limits
    started = time.monotonic()
    try:
        if blob is None:
            raise AnalysisError("the uploaded file was deleted by retention")
        report = analyze_file(
            blob,
            crash.kind,
            timeout=lim.analysis_timeout,
            mem_bytes=lim.analysis_mem_bytes,
            debuginfo_dirs=settings.debuginfo_dirs,
            fetch_debuginfo=settings.fetch_debuginfo,
            debuginfo_cache=settings.debuginfo_cache,
            max_report_bytes=lim.max_report_bytes,
        )
    except AnalysisError as e:
        crash = session.get(Crash, crash_id, with_for_update=True, populate_existing=True)
        if crash is None:  # deleted meanwhile (retention)
            return None
        crash.status = FAILED
        crash.error = str(e)[:2000]
        crash.analysis_seconds = time.monotonic() - started
        session.commit()
        metrics.ANALYSES.labels(outcome="failed").inc()
        return crash
    # Read the row again, locked (PostgreSQL): a redelivered task may have finished this
    # crash meanwhile, and its bucket must not be counted twice.
    crash = session.get(Crash, crash_id, with_for_update=True, populate_existing=True)
    if crash is None:
        return None
    if crash.status == DONE and not again:
        session.commit()
        return crash
    apply_report(crash, report)
    crash.analysis_seconds = time.monotonic() - started
    buckets.assign(session, crash, reason="regroup" if crash.bucket_id else "analysis")
    crash.status = DONE
    session.commit()
    metrics.ANALYSES.labels(outcome="done").inc()
    metrics.ANALYSIS_SECONDS.observe(crash.analysis_seconds)
    return crash


def unfinished(session: Session) -> list[int]:
    """Crashes a killed server or worker left queued or running, oldest first."""
    q = select(Crash.id).where(Crash.status.in_((QUEUED, RUNNING))).order_by(Crash.id)
    return list(session.scalars(q))


#: Meta key holding the analysis version the stored crashes were grouped with.
RULES_KEY = "analysis_version"


def analysis_version() -> str:
    """The version of the analysis the child processes run (the rules and the signature
    scheme change with it); read from the package metadata, not from its modules."""
    from .. import __version__

    return f"kcrash {__version__}"


def requeue_all(session: Session) -> list[int]:
    """Mark every analyzed or failed crash for analysis again; their ids."""
    ids = list(session.scalars(select(Crash.id).where(Crash.status.in_((DONE, FAILED)))))
    if ids:
        session.execute(update(Crash).where(Crash.id.in_(ids)).values(status=QUEUED))
    return ids


def regroup_if_rules_changed(session: Session) -> list[int]:
    """At start: when this server's analysis is not the one the store was grouped with,
    every crash is analyzed again (and so regrouped, with history); returns their ids."""
    current = analysis_version()
    row = session.get(Meta, RULES_KEY)
    if row is not None and row.value == current:
        return []
    ids = requeue_all(session) if row is not None else []
    if row is None:
        session.add(Meta(key=RULES_KEY, value=current))
    else:
        row.value = current
    return ids


#: Meta key of the blob store's id (see ``store.STORE_ID_FILE``).
STORE_ID_KEY = "blob_store_id"


def ensure_store_id(session: Session, blob_dir: Path) -> str:
    """At API start: the store's id in the database and in the blob directory, made on the
    first start; written again into a blob directory that lost it."""
    import secrets

    row = session.get(Meta, STORE_ID_KEY)
    if row is None:
        row = Meta(key=STORE_ID_KEY, value=secrets.token_hex(16))
        session.add(row)
    marker = blob_dir / STORE_ID_FILE
    if not marker.is_file() or marker.read_text().strip() != row.value:
        marker.write_text(row.value + "\n")
        marker.chmod(0o600)
    return row.value


def store_problem(session: Session, blob_dir: Path) -> str | None:
    """Why a worker with this blob directory cannot read the API's uploads (None: it can)."""
    row = session.get(Meta, STORE_ID_KEY)
    if row is None:
        return None  # no API has started on this database yet: nothing to read
    marker = blob_dir / STORE_ID_FILE
    try:
        found = marker.read_text().strip()
    except OSError:
        return f"{marker} is missing: this is not the API server's data directory"
    if found != row.value:
        return f"{marker} names another store than the database's: another server's data"
    return None
