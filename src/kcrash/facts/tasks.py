"""Tasks (crash's ``ps``) with crash's two-letter states.

drgn's own crash-compatible ``ps`` prints one-letter ``R/S/D`` states; crash
prints ``RU/IN/UN/ID…``, which operators grep for, so we decode the state
word ourselves.  Bits are those of include/linux/sched.h, stable for x86-64
since 4.14 (``TASK_IDLE`` = ``UNINTERRUPTIBLE | NOLOAD``, 4.14+; ``__state``
renamed from ``state`` in 5.14: both handled).
"""

from __future__ import annotations

import drgn
from drgn.helpers.linux.mm import task_rss, task_vsize, totalram_pages
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_cpu, task_on_cpu

from .model import TaskInfo

_TASK_STATE_BITS = (  # (mask, crash letters), most specific first
    (0x402, "ID"),  # TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD
    (0x800, "NE"),  # TASK_NEW
    (0x200, "WA"),  # TASK_WAKING
    (0x40, "PA"),  # TASK_PARKED
    (0x20, "ZO"),  # EXIT_ZOMBIE
    (0x10, "DE"),  # EXIT_DEAD
    (0x80, "DE"),  # TASK_DEAD
    (0x8, "TR"),  # __TASK_TRACED
    (0x4, "ST"),  # __TASK_STOPPED
    (0x2, "UN"),  # TASK_UNINTERRUPTIBLE
    (0x1, "IN"),  # TASK_INTERRUPTIBLE
)


def task_state_word(task: drgn.Object) -> int:
    """``__state`` (5.14+) or ``state``, or-ed with ``exit_state``."""
    try:
        state = task.__state.value_()
    except AttributeError:
        state = task.state.value_()
    return state | task.exit_state.value_()


def crash_state(task: drgn.Object) -> str:
    """crash's two-letter state of a task (``RU`` when no bit is set)."""
    word = task_state_word(task)
    for mask, letters in _TASK_STATE_BITS:
        if word & mask == mask:
            return letters
    return "RU"


def is_kthread(task: drgn.Object) -> bool:
    return bool(task.flags.value_() & 0x00200000)  # PF_KTHREAD


def all_tasks(prog: drgn.Program) -> list[drgn.Object]:
    """Every task, with the idle task of every *present* CPU, as crash counts them.

    drgn's ``for_each_task(idle=True)`` adds the idle tasks of online CPUs
    only; after ``panic()`` stopped the other CPUs (``smp_send_stop``, QEMU
    captures) they are offline, yet crash still lists their ``swapper/N``.
    """
    from drgn.helpers.linux.cpumask import for_each_present_cpu
    from drgn.helpers.linux.sched import idle_task

    idle = [idle_task(prog, cpu) for cpu in for_each_present_cpu(prog)]
    return idle + list(for_each_task(prog))


def task_rows(prog: drgn.Program, unreadable: list[int] | None = None) -> list[TaskInfo]:
    """Every task including each CPU's idle task, sorted like crash (pid, then cpu).

    A task whose ``task_struct`` lies partly in a page the dump left out (a makedumpfile
    older than the kernel excludes pages the kernel still uses) is left out of the rows and
    its address appended to `unreadable`, so the caller can say so; one such task does not
    cost the whole table."""
    try:
        total = totalram_pages(prog)
    except Exception:
        total = 0
    page_size = prog["PAGE_SIZE"].value_()
    rows = []
    for task in all_tasks(prog):
        try:
            rows.append(_task_row(task, total, page_size))
        except drgn.FaultError:
            if unreadable is not None:
                unreadable.append(task.value_())
    rows.sort(key=lambda r: (r.pid, r.cpu))
    return rows


def _task_row(task: drgn.Object, total: int, page_size: int) -> TaskInfo:
    """One ``ps`` row; raises drgn.FaultError when the task cannot be read."""
    comm = task.comm.string_().decode("utf-8", "replace")
    kthread = is_kthread(task)
    try:
        rss = 0 if kthread else task_rss(task).total
        vsz = 0 if kthread else task_vsize(task) // 1024
    except Exception:
        rss, vsz = 0, 0
    return TaskInfo(
        pid=task.pid.value_(),
        ppid=task.parent.pid.value_(),
        cpu=task_cpu(task),
        task=task.value_(),
        state=crash_state(task),
        comm=f"[{comm}]" if kthread else comm,
        active=task_on_cpu(task),
        mem_percent=(100.0 * rss / total) if total else 0.0,
        vsz_kb=vsz,
        rss_kb=rss * page_size // 1024,
    )


def format_ps(rows: list[TaskInfo]) -> str:
    """crash's ``ps`` table."""
    out = ["      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM"]
    for r in rows:
        mark = ">" if r.active else " "
        out.append(
            f"{mark}{r.pid:>8} {r.ppid:>7} {r.cpu:>3}  {r.task:016x}  {r.state}  "
            f"{r.mem_percent or 0:>4.1f} {r.vsz_kb or 0:>8} {r.rss_kb or 0:>8}  {r.comm}"
        )
    return "\n".join(out)
