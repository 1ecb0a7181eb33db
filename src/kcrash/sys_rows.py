"""The rows of crash's ``sys``: ONE table that the ``sys`` command, the JSON and the report use.

Why a table: the order of the fields, their crash labels and how each value reads used to
be written out in three places (the ``sys`` command, the model's JSON keys, the report's
rows), which drift.  A row here says, for one field of :class:`kcrash.model.SystemInfo`:
its crash label, where the value comes from in a dump (why it equals crash's), how the raw
value becomes crash's words (``1 GB``, ``00:00:36``) for the JSON and the report, how
crash's ``sys`` block prints it when that differs (quotes, ``[OFFLINE: n]``), and how
crash's text is read back from a pasted crash session (:mod:`kcrash.oops.crashsession`).

The model holds raw values read from a dump (bytes, seconds, a ``ps`` state code); from a
pasted crash session or a log it holds crash's own words, which every formatter here
passes through unchanged.  Rows without a label are not in crash's block but in the JSON
(after the crash fields they belong with, in the order of the JSON report since v1).

Adding a ``sys`` field: a field in ``SystemInfo``, a row here, its reading in
:func:`kcrash.facts.system.system_info`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model import SystemInfo
from .notes import Note


def format_duration(seconds: int) -> str:
    """crash's UPTIME format: ``HH:MM:SS`` or ``N days, HH:MM:SS``."""
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    prefix = f"{days} days, " if days else ""
    return f"{prefix}{hours:02}:{minutes:02}:{seconds:02}"


def format_memory(nbytes: int) -> str:
    """crash's MEMORY format: GB/MB/KB with one decimal when needed.

    Like crash, a total within 64 MB below a whole number of GB (the usual
    case: firmware and the kernel reserve a little) is shown as that GB.
    """
    gb, mb, kb = 1 << 30, 1 << 20, 1 << 10
    next_gb = -(-nbytes // gb) * gb
    if nbytes >= gb - 64 * mb and next_gb - nbytes <= 64 * mb:
        return f"{next_gb // gb} GB"
    for unit, name in ((gb, "GB"), (mb, "MB"), (kb, "KB")):
        if nbytes >= unit:
            if nbytes % unit == 0:
                return f"{nbytes // unit} {name}"
            value = nbytes / unit
            return f"{value:.1f} {name}"
    return f"{nbytes} bytes"


def crash_date(seconds: int) -> str:
    """crash's DATE format, in the local time zone as crash prints it."""
    dt = datetime.datetime.fromtimestamp(seconds).astimezone()
    return dt.strftime("%a %b %e %T %Z %Y")


def crash_loadavg(values: tuple[float, float, float]) -> str:
    """``avenrun[]`` (drgn's loadavg: fixed point over FIXED_1, so exact floats) as crash
    and /proc/loadavg print it: FIXED_1/200 (10, an integer division) added, then the
    fraction truncated to two digits. Rounding the exact value instead differs in the
    last digit when the fraction lies within 0.0002 of a half hundredth (0.395 + 0.0049
    stays 0.39)."""
    fshift, fixed_1 = 11, 1 << 11
    out = []
    for v in values:
        a = round(v * fixed_1) + fixed_1 // 200
        out.append(f"{a >> fshift}.{((a & (fixed_1 - 1)) * 100) >> fshift:02d}")
    return ", ".join(out)


#: crash's ``ps`` state codes (kcrash.facts.tasks.crash_state) and the names ``sys`` shows.
STATE_NAMES = {
    "RU": "TASK_RUNNING",
    "IN": "TASK_INTERRUPTIBLE",
    "UN": "TASK_UNINTERRUPTIBLE",
    "ID": "TASK_IDLE",
    "ST": "TASK_STOPPED",
    "TR": "TASK_TRACED",
    "ZO": "EXIT_ZOMBIE",
    "DE": "EXIT_DEAD",
    "PA": "TASK_PARKED",
    "WA": "TASK_WAKING",
    "NE": "TASK_NEW",
}


def _raw(fmt: Callable[[Any], str]) -> Callable[[Any], Any]:
    """Format a raw value; crash's own text (a string, from a pasted session) stays."""
    return lambda v: v if v is None or isinstance(v, str) else fmt(v)


def _kernel(info: SystemInfo) -> Any:
    # A Note (no vmlinux) carries its own [TAINTED] marker; it is rendered per language.
    k = info.kernel
    if isinstance(k, str) and not isinstance(k, Note) and info.kernel_tainted:
        return k + "  [TAINTED]"
    return k


def _dumpfile(info: SystemInfo) -> str | None:
    if info.dumpfile is None:
        return None
    return (
        info.dumpfile
        + ("  [PARTIAL DUMP]" if info.partial_dump else "")
        + ("  [TRUNCATED]" if info.truncated_dump else "")
    )


def _machine(info: SystemInfo) -> str | None:
    if info.machine and info.cpu_mhz:
        return f"{info.machine}  ({info.cpu_mhz} Mhz)"  # crash appends the CPU clock
    if info.machine == "aarch64":
        # arm64 kernels keep no CPU clock (no cpu_khz); crash's arm64 processor_speed()
        # gives 0 and its sys says so in these words
        return f"{info.machine}  (unknown Mhz)"
    return info.machine


def _state(info: SystemInfo) -> str | None:
    st = info.state
    if st in STATE_NAMES:  # a ps code read from the dump; otherwise crash's own words
        return f"{STATE_NAMES[st]} (PANIC)"
    return st


def _cpus_crash(info: SystemInfo) -> str | None:
    if info.cpus is None:
        return None
    return str(info.cpus) + (f" [OFFLINE: {info.cpus_offline}]" if info.cpus_offline else "")


def _quoted(field: str) -> Callable[[SystemInfo], str | None]:
    return lambda info: None if getattr(info, field) is None else f'"{getattr(info, field)}"'


def _task_crash(info: SystemInfo) -> str | None:
    return f"{info.task:x}  [THREAD_INFO: {info.task:x}]" if info.task is not None else None


def _hex(v: Any) -> str:
    return f"{v:x}" if isinstance(v, int) else str(v)


def _task_text(v: str) -> int:
    return int(v.split()[0], 16)  # "ffff…  [THREAD_INFO: ffff…]"


@dataclass(frozen=True)
class SysRow:
    """One field of ``sys``."""

    field: str  # SystemInfo attribute and JSON key
    label: str | None  # crash's label; None: JSON only, not in crash's block
    source: str  # where a dump gives the value (why it equals crash's)
    #: The value in the JSON and the report, from the model (crash's words); None: as held.
    value: Callable[[SystemInfo], Any] | None = None
    #: How the report shows the JSON value (default ``str``).
    show: Callable[[Any], str] = str
    #: How crash's ``sys`` block prints it, when not as the report does.
    crash: Callable[[SystemInfo], Any] | None = None
    #: crash's text back to a value (a pasted crash session); None: not read back.
    parse: Callable[[str], Any] | None = str

    def json_value(self, info: SystemInfo) -> Any:
        return self.value(info) if self.value else getattr(info, self.field)

    def crash_value(self, info: SystemInfo) -> Any:
        return self.crash(info) if self.crash else self.json_value(info)


def _field(name: str, fmt: Callable[[Any], str]) -> Callable[[SystemInfo], Any]:
    f = _raw(fmt)
    return lambda info: f(getattr(info, name))


SYS_ROWS: tuple[SysRow, ...] = (
    SysRow("kernel", "KERNEL", "the vmlinux opened, or which mode runs without one", _kernel),
    SysRow(
        "dumpfile", "DUMPFILE", "the dump's path; its header's partial/truncated flags", _dumpfile
    ),
    SysRow("cpus", "CPUS", "num_present_cpus()", crash=_cpus_crash, parse=None),
    SysRow("cpus_offline", None, "present minus num_online_cpus()", parse=None),
    SysRow(
        "date",
        "DATE",
        "the timekeeper's xtime_sec (ktime_get_real_seconds)",
        _field("date", crash_date),
    ),
    SysRow(
        "uptime",
        "UPTIME",
        "(jiffies_64 - INITIAL_JIFFIES) / HZ, HZ read from the dump",
        _field("uptime", format_duration),
    ),
    SysRow(
        "load_average",
        "LOAD AVERAGE",
        "avenrun (FSHIFT 11), crash's fixed-point rounding",
        _field("load_average", crash_loadavg),
    ),
    SysRow("tasks", "TASKS", "every thread plus each CPU's idle task", parse=int),
    SysRow("nodename", "NODENAME", "init_uts_ns.name"),
    SysRow("release", "RELEASE", "init_uts_ns.name, else VMCOREINFO's OSRELEASE"),
    SysRow("version", "VERSION", "init_uts_ns.name"),
    SysRow("machine", "MACHINE", "init_uts_ns.name and cpu_khz", _machine),
    SysRow(
        "memory",
        "MEMORY",
        "node_present_pages of every node × PAGE_SIZE, crash's rounding",
        _field("memory", format_memory),
    ),
    SysRow("panic", "PANIC", "the log's cause line (facts/panic.py)", crash=_quoted("panic")),
    SysRow("pid", "PID", "the crashed thread", parse=int),
    SysRow("command", "COMMAND", "the crashed thread's comm", crash=_quoted("command")),
    SysRow(
        "task",
        "TASK",
        "the crashed thread's task_struct address",
        show=_hex,
        crash=_task_crash,
        parse=_task_text,
    ),
    SysRow("cpu", "CPU", "task_cpu() of the crashed thread", parse=int),
    SysRow("state", "STATE", "crash_state() of the crashed thread", _state),
    SysRow("taint", None, "tainted() (drgn), or the log's Tainted: flags", parse=None),
    SysRow("build_id", None, "VMCOREINFO's BUILD-ID (Linux 5.9+)", parse=None),
    SysRow("dump_format", None, "the dump's header", parse=None),
)

#: The rows of crash's block, in crash's order.
CRASH_ROWS = tuple(r for r in SYS_ROWS if r.label)
ROWS_BY_LABEL = {r.label: r for r in CRASH_ROWS}


def system_values(info: SystemInfo) -> dict[str, Any]:
    """The ``system`` object of the JSON report (docs/report-schema.json)."""
    out = {r.field: r.json_value(info) for r in SYS_ROWS}
    out["unknown"] = dict(info.unknown)
    return out


def report_rows(
    system: dict[str, Any], unknown_text: Callable[[str], str] = lambda why: f"(unknown: {why})"
) -> list[tuple[str, str]]:
    """(label, text) of a report's ``system`` object, crash's rows in crash's order.

    A field a damaged dump could not give is shown with why (``unknown_text``, in the
    report's language), never as 0.
    """
    rows = []
    unknown = system.get("unknown") or {}
    for r in CRASH_ROWS:
        v = system.get(r.field)
        if v is None and r.field in unknown:
            rows.append((str(r.label), unknown_text(unknown[r.field])))
        elif v is not None:
            rows.append((str(r.label), r.show(v)))
    return rows
