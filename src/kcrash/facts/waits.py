"""Every blocked task's wait and the holders behind it: the nodes of the wait-for graph.

Blocked = in D state (``TASK_UNINTERRUPTIBLE`` without ``TASK_NOLOAD``: idle kernel threads
sleep in ``TASK_IDLE`` and are not stuck), or running on a CPU inside a lock's spin loop.
Each holder of a lock a blocked task waits on is added too, whatever its state, with its own
wait (a holder that sleeps in ``msleep()`` or waits for a completion is the root of the
chain): following holders until none is new gives every task of every chain and cycle.
The graph itself is built in :mod:`kcrash.diagnosis.waits` (no drgn there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import drgn

from ..model import TaskWait
from .locks import task_wait, wait_frame
from .stacks import task_stack

if TYPE_CHECKING:
    from ..target.open import Target

#: At most this many tasks are examined (blocked ones first, then holders): a machine with
#: thousands of D tasks gets the first ones, and the report says how many there were.
MAX_TASKS = 64


def collect_waits(target: Target) -> list[TaskWait]:
    """The waits of the blocked tasks and of the holders of what they wait on."""
    from drgn.helpers.linux.pid import for_each_task
    from drgn.helpers.linux.sched import task_on_cpu

    from .tasks import crash_state

    prog = target.prog
    by_address: dict[int, drgn.Object] = {}
    blocked: list[drgn.Object] = []
    for t in for_each_task(prog):
        by_address[t.value_()] = t
        state = crash_state(t)
        if state == "UN":
            blocked.append(t)
        elif state == "RU" and _on_cpu(task_on_cpu, t):
            blocked.append(t)  # kept only if its stack spins on a lock (below)
    out: list[TaskWait] = []
    done: set[int] = set()
    queue = [(t, True) for t in blocked]
    while queue and len(out) < MAX_TASKS:
        t, is_blocked = queue.pop(0)
        addr = t.value_()
        if addr in done:
            continue
        stack = task_stack(target, t)
        found = wait_frame(stack)
        if is_blocked and crash_state(t) == "RU" and (found is None or not _spins(found[1].kind)):
            continue  # not done: it may still be queued as a holder (a spinlock's)
        done.add(addr)
        w = task_wait(target, t, stack)
        w.stack, w.blocked = stack, is_blocked
        out.append(w)
        lock = w.lock
        if lock is None:
            continue
        for holder in (lock.owner_task, lock.last_reader_task):
            if holder and holder in by_address and holder not in done:
                queue.append((by_address[holder], False))
    return out


def _on_cpu(task_on_cpu: object, t: drgn.Object) -> bool:
    try:
        return bool(task_on_cpu(t))  # type: ignore[operator]
    except (LookupError, drgn.FaultError, AttributeError):
        return False


def _spins(kind: str) -> bool:
    return kind in ("spinlock", "rwlock", "mutex-spin")
