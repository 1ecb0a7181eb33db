"""Server settings: where data lives, which database and broker, and every limit.

Why one frozen dataclass rather than a settings framework: the same values come from
``kcrash server`` options, from ``kcrash worker`` and from tests, and each limit here is a
security boundary (upload caps, field lengths, analysis time and memory) that a reader
should find in one place with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    """Upload and analysis bounds; every one of them turns into a 4xx or a failed status."""

    #: A vmcore after decompression in transit.  makedumpfile -d 31 dumps of 1 TiB hosts
    #: are a few GiB; an ELF /proc/vmcore copy of a large host is refused unless raised.
    max_vmcore_bytes: int = 8 * GIB
    #: An oops log or vmcore-dmesg.txt: the printk ring buffer is at most 32 MiB
    #: (CONFIG_LOG_BUF_SHIFT=25); 64 MiB leaves room for console logs around it.
    max_log_bytes: int = 64 * MIB
    #: A report JSON from ``kcrash analyze --format json``: real ones are < 1 MiB.
    max_report_bytes: int = 16 * MIB
    #: Host facts (hostname, machine id, release, distribution, hardware) are short strings;
    #: a longer one is an attack on the database or the dashboard, not a fact.
    max_field_chars: int = 256
    #: Seconds and address space for one analysis child process.
    analysis_timeout: float = 900.0
    analysis_mem_bytes: int = 6 * GIB


@dataclass(frozen=True)
class Settings:
    """Everything a server, worker or tool process needs to reach the same data."""

    data_dir: Path
    #: SQLAlchemy URL; None means the embedded SQLite file DATA/kcrash.db.
    database_url: str | None = None
    #: Celery broker URL (redis://…); None means the embedded LocalPool.
    broker_url: str | None = None
    #: Analysis processes run at once by the embedded pool.
    workers: int = 1
    #: Extra directories searched for vmlinux and module debuginfo (``--debuginfo``).
    debuginfo_dirs: tuple[str, ...] = ()
    #: Let the analysis child download debuginfo into the shared cache.
    fetch_debuginfo: bool = False
    #: The debuginfo cache of the analysis children (``KCRASH_DEBUGINFO_CACHE``); one shared
    #: directory for all workers means one download per build id. None: the user's cache.
    debuginfo_cache: str | None = None
    #: Retention: crashes older than this many days are deleted (None: kept).
    retention_days: float | None = None
    #: Retention: blobs beyond this many bytes in total are deleted oldest first (None: no cap).
    retention_bytes: int | None = None
    #: Seconds between retention runs (one also runs at start).
    retention_interval: float = 3600.0
    #: Webhooks for new, regressed and spiking buckets (JSON; :mod:`alerts`), sent by
    #: whatever analyzes: the embedded pool and the Celery workers alike.
    alerts_file: str | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'kcrash.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def default_data_dir() -> Path:
    """``$KCRASH_DATA`` or ``~/.local/share/kcrash/server`` (XDG data home)."""
    env = os.environ.get("KCRASH_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "kcrash" / "server"
