"""The facts of crash's ``sys`` command.

Sources, per triage-reference §3 (crash's own derivations), so that our
values equal crash's on the same dump:

- DATE from the timekeeper's ``xtime_sec`` (drgn's ``ktime_get_real_seconds``);
- UPTIME from ``jiffies_64 - INITIAL_JIFFIES`` over HZ, like crash; HZ is read
  from the dump (in-kernel config, ``tick_nsec``, or jiffies against the log's
  clock: kernel_hz_and_source), never assumed;
- LOAD AVERAGE from ``avenrun`` (FSHIFT 11);
- TASKS: all threads plus each CPU's idle task;
- MEMORY: present pages × page size, crash's rounding;
- PANIC: the *cause* line, not the ``Fatal exception`` trailer (see panic.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import drgn
from drgn.helpers.linux.cpumask import num_online_cpus, num_present_cpus
from drgn.helpers.linux.panic import tainted
from drgn.helpers.linux.sched import loadavg, task_cpu
from drgn.helpers.linux.timekeeping import ktime_get_real_seconds

from ..model import LogLine, SystemInfo
from ..notes import Note
from .panic import panic_message
from .tasks import all_tasks, crash_state

if TYPE_CHECKING:
    from ..target.open import Target


def read_error(e: BaseException) -> str:
    """Why a fact could not be read, in one line (drgn's fault messages are long); a
    :class:`~kcrash.notes.Note`, so a report says it in its language."""
    msg = str(e).splitlines()[0] if str(e) else ""
    if isinstance(e, drgn.FaultError):
        return Note("fact.unreadable", error=msg[:160])
    if isinstance(e, LookupError):
        return Note("fact.not_found", error=msg[:160])
    return Note("fact.error", error=f"{type(e).__name__}: {msg[:160]}" if msg else type(e).__name__)


def present_memory(prog: drgn.Program) -> int:
    """Bytes of present memory: the sum of every node's ``node_present_pages``."""
    from drgn.helpers.linux.mmzone import for_each_online_pgdat

    pages = sum(pgdat.node_present_pages.value_() for pgdat in for_each_online_pgdat(prog))
    if pages <= 0:  # a zeroed or damaged pg_data_t: unknown, never "0 bytes"
        raise ValueError("no present pages in the node data (damaged dump?)")
    return pages * prog["PAGE_SIZE"].value_()


def initial_jiffies(hz: int) -> int:
    """INITIAL_JIFFIES of a 64-bit kernel: ``(unsigned long)(unsigned int)(-300 * HZ)``
    (include/linux/jiffies.h, since 2.6: jiffies start 5 minutes before their 32-bit wrap)."""
    return (-300 * hz) & 0xFFFFFFFF


def uptime_seconds(prog: drgn.Program, log: list[LogLine] | None = None) -> int:
    """Uptime the way crash computes it: jiffies since INITIAL_JIFFIES, over HZ."""
    hz = kernel_hz(prog, log)
    if hz is None:
        raise LookupError("HZ is not known (no kernel config, tick_nsec or log to derive it)")
    return (_jiffies_64(prog) - initial_jiffies(hz)) // hz


def _jiffies_64(prog: drgn.Program) -> int:
    """jiffies_64 read at its kallsyms address: no type needed (no-debuginfo mode too)."""
    return prog.read_u64(prog.symbol("jiffies_64").address)


#: CONFIG_HZ choices of kernel/Kconfig.hz on x86-64 and arm64 (HZ_100/250/300/1000). Debian
#: and Ubuntu before 24.04 build 250; RHEL/CentOS/Alma/Rocky, Fedora, SUSE and Ubuntu 24.04+
#: build 1000. A derived value is snapped to the nearest of these.
HZ_CHOICES = (100, 250, 300, 1000)


def hz_from_ikconfig(blob: bytes) -> int | None:
    """CONFIG_HZ from the in-kernel config (CONFIG_IKCONFIG: kernel/configs.c keeps the
    gzipped .config between the "IKCFG_ST" and "IKCFG_ED" markers)."""
    import re
    import zlib

    start = blob.find(b"IKCFG_ST")
    if start < 0:
        return None
    try:
        text = zlib.decompressobj(wbits=31).decompress(blob[start + 8 :])
    except zlib.error:
        return None
    m = re.search(rb"^CONFIG_HZ=(\d+)$", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def hz_from_tick_nsec(tick_nsec: int) -> int | None:
    """HZ from ``tick_nsec`` (kernel/time/ntp.c: the length of a tick in ns, TICK_NSEC =
    (NSEC_PER_SEC + HZ/2) / HZ, scaled by adjtimex's `tick` when a user changes it)."""
    if tick_nsec <= 0:
        return None
    raw = 1_000_000_000 / tick_nsec
    nearest = min(HZ_CHOICES, key=lambda h: abs(h - raw))
    return nearest if abs(nearest - raw) <= 0.02 * nearest else round(raw)


def hz_from_jiffies(jiffies_64: int, seconds: float) -> int | None:
    """HZ derived from jiffies_64 and a clock read at about the same moment (the last log
    record's timestamp, in seconds since boot).

    For each choice h, (jiffies_64 - INITIAL_JIFFIES(h)) / h is the uptime h implies. As
    INITIAL_JIFFIES depends on HZ, a wrong h implies 300 + (HZ/h)(T - 300) s for a true
    uptime of T s: far off a few seconds after boot and after hours, but close to the truth
    when T is near 300 s (jiffies_64 passes 2^32 at 5 minutes whatever HZ is). So the best
    choice must fit the clock (within 10 % or 2 s) and beat every other by a margin (1 s or
    2 %); otherwise None: an uptime near 5 minutes cannot tell HZ this way."""
    errors = sorted(
        (abs((jiffies_64 - initial_jiffies(h)) / h - seconds), h)
        for h in HZ_CHOICES
        if jiffies_64 >= initial_jiffies(h)
    )
    if not errors or errors[0][0] > max(2.0, 0.1 * seconds):
        return None
    margin = max(1.0, 0.02 * seconds)
    if len(errors) > 1 and errors[1][0] - errors[0][0] < margin:
        return None
    return errors[0][1]


def _symbol_bytes(prog: drgn.Program, start: str, end: str) -> bytes:
    first = prog.symbol(start).address
    return prog.read(first, prog.symbol(end).address - first)


def kernel_hz_and_source(
    prog: drgn.Program, log: list[LogLine] | None = None
) -> tuple[int | None, str]:
    """CONFIG_HZ and how it was found, without types (every mode reads symbols):

    1. the in-kernel config (CONFIG_IKCONFIG=y: ``kernel_config_data`` …
       ``kernel_config_data_end``, global symbols since Linux v5.2; SUSE builds it in,
       Debian, RHEL and Fedora do not);
    2. ``tick_nsec`` (kernel/time/ntp.c, a data symbol with CONFIG_KALLSYMS_ALL, which
       every major distribution sets);
    3. derived from ``jiffies_64`` and the last log record's timestamp (see
       hz_from_jiffies) — it needs only the log, which every mode reads.
    """
    try:
        hz = hz_from_ikconfig(_symbol_bytes(prog, "kernel_config_data", "kernel_config_data_end"))
        if hz:
            return hz, "ikconfig"
    except (LookupError, drgn.FaultError, ValueError):
        pass
    try:
        hz = hz_from_tick_nsec(prog.read_u64(prog.symbol("tick_nsec").address))
        if hz:
            return hz, "tick_nsec"
    except (LookupError, drgn.FaultError, ValueError):
        pass
    stamps = [ln.timestamp for ln in log or () if ln.timestamp]
    if stamps:
        try:
            hz = hz_from_jiffies(_jiffies_64(prog), stamps[-1])
            if hz:
                return hz, "jiffies"
        except (LookupError, drgn.FaultError, ValueError):
            pass
    return None, "unknown"


def kernel_hz(prog: drgn.Program, log: list[LogLine] | None = None) -> int | None:
    """CONFIG_HZ read from the dump (kernel_hz_and_source); None when nothing tells."""
    return kernel_hz_and_source(prog, log)[0]


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

    taint = get(lambda: tainted(prog), None)
    info.taint = taint or None
    if target.vmlinux:
        info.kernel = target.vmlinux
        info.kernel_tainted = bool(taint)
    else:  # a sentence of kcrash's, not a path: reports render it in their language
        # crash's [TAINTED] when the mask says so; an unreadable mask (arm64's tainted_mask
        # is not in kallsyms without CONFIG_KALLSYMS_ALL) is said, never taken for clean
        suffix = "_taint_unknown" if taint is None else "_tainted" if taint else ""
        info.kernel = Note(f"system.kernel_{target.mode}{suffix}")
    info.dumpfile = target.dump.path
    info.partial_dump = bool(target.dump.partial)
    info.truncated_dump = bool(target.dump.truncated)
    info.cpus = get(lambda: num_present_cpus(prog), field="cpus")
    online = get(lambda: num_online_cpus(prog))
    if info.cpus is not None and online is not None:
        info.cpus_offline = info.cpus - online
    info.date = get(lambda: ktime_get_real_seconds(prog).value_(), field="date")
    info.uptime = get(lambda: uptime_seconds(prog, log), field="uptime")
    info.load_average = get(lambda: tuple(loadavg(prog)), field="load_average")
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
    info.cpu_mhz = get(lambda: prog["cpu_khz"].value_() // 1000)
    info.memory = get(lambda: present_memory(prog), field="memory")
    info.panic = panic_message(log)
    live = target.dump.container in ("kcore", "qmp")  # a running kernel has no panic task
    task = get(lambda: prog.crashed_thread().object, field=None if live else "pid")
    if task is not None:
        info.pid = get(lambda: task.pid.value_(), field="pid")
        info.command = get(lambda: task.comm.string_().decode(), field="command")
        info.task = get(lambda: task.value_(), field="task")
        info.cpu = get(lambda: task_cpu(task), field="cpu")
        info.state = get(lambda: crash_state(task), field="state")
    return info
