"""Tasks (crash's ``ps``) with crash's two-letter states.

drgn's own crash-compatible ``ps`` prints one-letter ``R/S/D`` states; crash
prints ``RU/IN/UN/ID…``, which operators grep for, so we decode the state
word ourselves.  Bits are those of include/linux/sched.h, stable for x86-64
since 4.14 (``TASK_IDLE`` = ``UNINTERRUPTIBLE | NOLOAD``, 4.14+; ``__state``
renamed from ``state`` in 5.14: both handled).
"""

from __future__ import annotations

from collections.abc import Iterator

import drgn
from drgn.helpers.linux.mm import task_rss, task_vsize, totalram_pages, virt_to_pfn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_cpu, task_on_cpu

from ..model import TaskInfo

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
    return list(iter_tasks(prog))


def iter_tasks(prog: drgn.Program) -> Iterator[drgn.Object]:
    """:func:`all_tasks` one by one (a walk that faults mid-way has yielded the rest).

    A damaged PID table can list a task twice (or, through a loop, forever): a task
    seen twice ends the walk with an error.
    """
    from drgn.helpers.linux.cpumask import for_each_present_cpu
    from drgn.helpers.linux.sched import idle_task

    seen: set[int] = set()
    for task in [idle_task(prog, cpu) for cpu in for_each_present_cpu(prog)]:
        seen.add(task.value_())
        yield task
    for task in for_each_task(prog):
        addr = task.value_()
        if addr in seen:
            raise ValueError(f"task {addr:#x} is listed twice (a damaged PID table)")
        seen.add(addr)
        yield task


def physical_pages(prog: drgn.Program) -> int:
    """Pages of physical memory as crash's ``ps`` %MEM counts them: up to ``high_memory``.

    crash divides a task's RSS by ``BTOP(VTOP(high_memory))`` (memory.c,
    ``vm_init()``): all of RAM up to the end of the direct map (no highmem
    on x86-64), not ``totalram_pages`` (RAM less what the kernel and the
    crashkernel reservation took; 180338 of 262112 pages on the corpus's
    1 GB guests), which would print 0.2 where crash prints 0.1.
    """
    try:
        return virt_to_pfn(prog["high_memory"]).value_()
    except (LookupError, ValueError, drgn.FaultError):
        return totalram_pages(prog)  # the same question, asked of the page allocator


def _tasks_readable(prog: drgn.Program, errors: list[str] | None) -> Iterator[drgn.Object]:
    """:func:`all_tasks`, but a task list broken mid-way (a damaged dump) ends the
    walk with what was read, and the reason goes to ``errors``."""
    try:
        yield from iter_tasks(prog)
    except (drgn.FaultError, LookupError, ValueError) as e:
        if errors is None:
            raise
        from .system import read_error

        errors.append(f"the task list is cut short: {read_error(e)}")


def task_rows(prog: drgn.Program, errors: list[str] | None = None) -> list[TaskInfo]:
    """Every task including each CPU's idle task, sorted like crash (pid, then cpu).

    With ``errors``, a task that cannot be read is left out and the reason noted
    there (a damaged dump lists the rest), instead of ending the table.
    """
    try:
        total = physical_pages(prog)
    except Exception:
        total = 0
    page_size = prog["PAGE_SIZE"].value_()
    rows = []
    for task in _tasks_readable(prog, errors):
        try:
            rows.append(_task_row(task, total, page_size))
        except (drgn.FaultError, LookupError, ValueError) as e:
            if errors is None:
                raise
            from .system import read_error

            errors.append(f"task at {task.value_():#x}: {read_error(e)}")
    rows.sort(key=lambda r: (r.pid, r.cpu))
    return rows


def _task_row(task: drgn.Object, total: int, page_size: int) -> TaskInfo:
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
