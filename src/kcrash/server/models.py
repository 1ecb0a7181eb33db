"""The ORM tables (SQLAlchemy 2 declarative); the schema itself lives in ``migrations/``.

The contract's minimum (Host, Crash, Bucket, BucketHistory, Token) plus what queries need
as columns rather than inside the report JSON: a crash's class, culprit module, taint and
panic line are copied out of its report so that filters and the dashboard's search are
plain indexed SQL on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Crash.status values: the analysis life cycle.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)
#: Crash.kind values: what was uploaded.
KINDS = ("vmcore", "log", "report")
#: Bucket.state values (``fixed`` carries ``fixed_in``, a kernel release).
BUCKET_STATES = ("open", "fixed", "ignored")
#: Token roles, weakest first: a host's token submits only; read sees reports; admin sees dumps.
ROLES = ("submit", "read", "admin")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}  # noqa: RUF012


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: machine id when the host sent one (/etc/machine-id survives renames), else "name:<name>".
    key: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    machine_id: Mapped[str | None] = mapped_column(String(300))
    distro: Mapped[str | None] = mapped_column(String(300))
    hardware: Mapped[str | None] = mapped_column(String(300))
    crashes: Mapped[list[Crash]] = relationship(back_populates="host")


class Bucket(Base):
    __tablename__ = "buckets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: kcrash's stable signature id; a split bucket gets "<signature>~<n>".
    signature: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    class_: Mapped[str | None] = mapped_column("class", String(100), index=True)
    culprit: Mapped[str | None] = mapped_column(String(300))
    culprit_module: Mapped[str | None] = mapped_column(String(300), index=True)
    state: Mapped[str] = mapped_column(String(20), default="open")
    fixed_in: Mapped[str | None] = mapped_column(String(300))
    first_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    #: A person merged this bucket into another: its signature now leads there.
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("buckets.id"))
    #: "rules" (made by a signature) or "split" (made by a person).
    origin: Mapped[str] = mapped_column(String(20), default="rules")
    representative_id: Mapped[int | None] = mapped_column(Integer)


class Crash(Base):
    __tablename__ = "crashes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    crashed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    kernel_release: Mapped[str | None] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(100), index=True)
    bucket_id: Mapped[int | None] = mapped_column(ForeignKey("buckets.id"), index=True)
    #: A person split this crash into a bucket: regrouping keeps it there.
    pinned_bucket_id: Mapped[int | None] = mapped_column(ForeignKey("buckets.id"))
    blob_path: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    class_: Mapped[str | None] = mapped_column("class", String(100), index=True)
    culprit_module: Mapped[str | None] = mapped_column(String(300), index=True)
    taint: Mapped[str | None] = mapped_column(String(100))
    panic: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    analysis_seconds: Mapped[float | None] = mapped_column(Float)
    host: Mapped[Host | None] = relationship(back_populates="crashes")
    bucket: Mapped[Bucket | None] = relationship(foreign_keys=[bucket_id])
    report_row: Mapped[CrashReport | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def report(self) -> dict[str, Any] | None:
        """The full report JSON (its own table, loaded when read)."""
        return self.report_row.report if self.report_row is not None else None

    @report.setter
    def report(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self.report_row = None
        elif self.report_row is None:
            self.report_row = CrashReport(report=value)
        else:
            self.report_row.report = value

    #: Covering indexes of migration 0002 (the dashboard's aggregates; see its reasons).
    #: SQLite also has ix_crashes_panic (panic, bucket_id), made there only.
    __table_args__ = (
        Index("ix_crashes_bucket_received", "bucket_id", "received_at"),
        Index("ix_crashes_received_cover", "received_at", "class", "bucket_id"),
        Index("ix_crashes_kernel_cover", "kernel_release", "host_id", "received_at"),
        Index("ix_crashes_host_received", "host_id", "received_at"),
        Index("ix_crashes_bucket_cover", "bucket_id", "host_id", "kernel_release", "taint"),
    )


class CrashReport(Base):
    """A crash's full report, apart from the crash row.

    Reports are 10-30 KB; in the crashes table they would make every scan (the text
    search, the metrics, a host's list) read gigabytes at 100,000 crashes — SQLite keeps
    a row's columns together and spills a large one to overflow pages in the same file.
    Apart, the crashes table stays a few hundred bytes a row.
    """

    __tablename__ = "crash_reports"
    crash_id: Mapped[int] = mapped_column(
        ForeignKey("crashes.id", ondelete="CASCADE"), primary_key=True
    )
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class BucketHistory(Base):
    """Every move of a crash between buckets, with why (regroup, merge, split, analysis)."""

    __tablename__ = "bucket_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crash_id: Mapped[int] = mapped_column(ForeignKey("crashes.id", ondelete="CASCADE"), index=True)
    old_bucket: Mapped[int | None] = mapped_column(Integer)
    new_bucket: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(100))


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Meta(Base):
    """Key/value facts about the store itself (the analysis rules version it was grouped by)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
