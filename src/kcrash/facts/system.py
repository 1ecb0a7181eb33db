"""The facts of crash's ``sys`` command.

Sources, per triage-reference §3 (crash's own derivations), so that our
values equal crash's on the same dump:

- DATE from the timekeeper's ``xtime_sec`` (drgn's ``ktime_get_real_seconds``);
- UPTIME from ``jiffies_64 - INITIAL_JIFFIES`` over HZ, like crash; HZ is
  derived from the timekeeper when the kernel config is not in the dump;
- LOAD AVERAGE from ``avenrun`` (FSHIFT 11);
- TASKS: all threads plus each CPU's idle task;
- MEMORY: present pages × page size, crash's rounding;
- PANIC: the *cause* line, not the ``Fatal exception`` trailer (see panic.py).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import drgn
from drgn.helpers.linux.cpumask import num_online_cpus, num_present_cpus
from drgn.helpers.linux.panic import tainted
from drgn.helpers.linux.sched import loadavg, task_cpu
from drgn.helpers.linux.timekeeping import ktime_get_real_seconds

from ..notes import Note
from ..textsafe import visible
from .model import LogLine, SystemInfo
from .panic import panic_message
from .tasks import all_tasks, crash_state

if TYPE_CHECKING:
    from ..target.open import Target

_STATE_NAMES = {
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


def read_error(e: BaseException) -> str:
    """Why a fact could not be read, in one line (drgn's fault messages are long)."""
    msg = str(e).splitlines()[0] if str(e) else ""
    if isinstance(e, drgn.FaultError):
        return f"could not read memory ({msg[:160]})"
    if isinstance(e, LookupError):
        return f"not found in this dump ({msg[:160]})"
    return f"{type(e).__name__}: {msg[:160]}" if msg else type(e).__name__


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


def present_memory(prog: drgn.Program) -> int:
    """Bytes of present memory: the sum of every node's ``node_present_pages``."""
    from drgn.helpers.linux.mmzone import for_each_online_pgdat

    pages = sum(pgdat.node_present_pages.value_() for pgdat in for_each_online_pgdat(prog))
    if pages <= 0:  # a zeroed or damaged pg_data_t: unknown, never "0 bytes"
        raise ValueError("no present pages in the node data (damaged dump?)")
    return pages * prog["PAGE_SIZE"].value_()


def uptime_seconds(prog: drgn.Program) -> int:
    """Uptime the way crash computes it: jiffies since INITIAL_JIFFIES, over HZ."""
    jiffies = prog["jiffies_64"].value_()
    hz = kernel_hz(prog)
    initial = (-300 * hz) & 0xFFFFFFFF  # INITIAL_JIFFIES, 32-bit wrap as in the kernel
    return (jiffies - initial) // hz


def kernel_hz(prog: drgn.Program) -> int:
    """CONFIG_HZ: from the in-dump config when present, else from tick_nsec."""
    try:
        tick_nsec = prog["tick_nsec"].value_()
        if tick_nsec:
            return round(1_000_000_000 / tick_nsec)
    except (KeyError, LookupError):
        pass
    return 250


def crash_date(seconds: int) -> str:
    """crash's DATE format, in the local time zone as crash prints it."""
    dt = datetime.datetime.fromtimestamp(seconds).astimezone()
    return dt.strftime("%a %b %e %T %Z %Y")


def system_info(target: Target, log: list[LogLine]) -> SystemInfo:
    """Every ``sys`` field; a field that cannot be read stays None, its reason in
    ``info.unknown`` (a damaged dump shows which facts are missing and why)."""
    prog = target.prog
    info = SystemInfo(dump_format=target.dump.description, build_id=target.dump.build_id)

    def get(fn, default=None, field=None):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except Exception as e:
            if field is not None and field not in info.unknown:
                info.unknown[field] = read_error(e)
            return default

    taint = get(lambda: tainted(prog), "")
    info.taint = taint or None
    marker = "  [TAINTED]" if taint else ""
    if target.vmlinux:
        info.kernel = target.vmlinux + marker
    else:  # a sentence of kcrash's, not a path: reports render it in their language
        info.kernel = Note(f"system.kernel_{target.mode}", tainted=marker)
    info.dumpfile = target.dump.path + ("  [PARTIAL DUMP]" if target.dump.partial else "")
    if target.dump.truncated:
        info.dumpfile += "  [TRUNCATED]"
    info.cpus = get(lambda: num_present_cpus(prog), field="cpus")
    online = get(lambda: num_online_cpus(prog))
    if info.cpus is not None and online is not None:
        info.cpus_offline = info.cpus - online
    info.date = get(lambda: crash_date(ktime_get_real_seconds(prog).value_()), field="date")
    info.uptime = get(lambda: format_duration(uptime_seconds(prog)), field="uptime")
    info.load_average = get(
        lambda: ", ".join(f"{v:.2f}" for v in loadavg(prog)), field="load_average"
    )
    info.tasks = get(lambda: len(all_tasks(prog)), field="tasks")
    uts = get(lambda: prog["init_uts_ns"].name, field="nodename")
    if uts is None and "nodename" in info.unknown:
        for f in ("release", "version", "machine"):
            info.unknown[f] = info.unknown["nodename"]
    else:
        for f in ("nodename", "release", "version", "machine"):
            setattr(info, f, get(lambda f=f: getattr(uts, f).string_().decode(), field=f))
    info.release = info.release or target.dump.release
    if info.release:
        info.unknown.pop("release", None)
    mhz = get(lambda: prog["cpu_khz"].value_() // 1000)
    if info.machine and mhz:
        info.machine += f"  ({mhz} Mhz)"  # crash appends the CPU clock
    info.memory = get(lambda: format_memory(present_memory(prog)), field="memory")
    info.panic = panic_message(log)
    live = target.dump.container in ("kcore", "qmp")  # a running kernel has no panic task
    task = get(lambda: prog.crashed_thread().object, field=None if live else "pid")
    if task is not None:
        info.pid = get(lambda: task.pid.value_(), field="pid")
        info.command = get(lambda: task.comm.string_().decode(), field="command")
        info.task = get(lambda: task.value_(), field="task")
        info.cpu = get(lambda: task_cpu(task), field="cpu")
        st = get(lambda: crash_state(task), field="state")
        if st is not None:
            info.state = f"{_STATE_NAMES.get(st, st)} (PANIC)"
    return info


def format_sys(info: SystemInfo) -> str:
    """crash's ``sys`` block, right-aligned labels."""
    cpus = None
    if info.cpus is not None:
        cpus = str(info.cpus) + (f" [OFFLINE: {info.cpus_offline}]" if info.cpus_offline else "")
    task = f"{info.task:x}  [THREAD_INFO: {info.task:x}]" if info.task is not None else None
    rows = [
        ("KERNEL", info.kernel),
        ("DUMPFILE", info.dumpfile),
        ("CPUS", cpus),
        ("DATE", info.date),
        ("UPTIME", info.uptime),
        ("LOAD AVERAGE", info.load_average),
        ("TASKS", info.tasks),
        ("NODENAME", info.nodename),
        ("RELEASE", info.release),
        ("VERSION", info.version),
        ("MACHINE", info.machine),
        ("MEMORY", info.memory),
        ("PANIC", f'"{info.panic}"' if info.panic is not None else None),
        ("PID", info.pid),
        ("COMMAND", f'"{info.command}"' if info.command is not None else None),
        ("TASK", task),
        ("CPU", info.cpu),
        ("STATE", info.state),
    ]
    # one line per field whatever a hostile dump holds (a newline in a comm or the panic string)
    unknown = {k.upper().replace("_", " "): why for k, why in info.unknown.items()}
    return "\n".join(
        f"{k:>12}: {visible(v)}" if v is not None else f"{k:>12}: (unknown: {visible(unknown[k])})"
        for k, v in rows
        if v is not None or k in unknown
    )
