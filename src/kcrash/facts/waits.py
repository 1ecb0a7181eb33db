"""Every blocked task's wait and the holders behind it: the nodes of the wait-for graph.

Blocked = in D state (``TASK_UNINTERRUPTIBLE`` without ``TASK_NOLOAD``: idle kernel threads
sleep in ``TASK_IDLE`` and are not stuck), or running on a CPU inside a lock's spin loop.
Each holder of a lock a blocked task waits on is added too, whatever its state, with its own
wait (a holder that sleeps in ``msleep()`` or waits for a completion is the root of the
chain): following holders until none is new gives every task of every chain and cycle.
The graph itself is built in :mod:`kcrash.diagnosis.waits` (no drgn there).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import drgn

from ..model import TaskWait
from ..notes import Note
from .locks import claim_holders, task_wait, wait_frame
from .stacks import task_stack

if TYPE_CHECKING:
    from ..target.open import Target

#: At most this many tasks are examined (holders first, then blocked ones): a machine with
#: thousands of D tasks gets the first ones, and the report says how many there were.
MAX_TASKS = 64
#: Unwinding a stack costs milliseconds (tens under load): the examination stops this many
#: seconds after the step began (the pass that counts the blocked tasks included) whatever
#: MAX_TASKS says, and the report says how many were left out. The first MIN_TASKS are
#: examined whatever the time: the first waiter and the holders it leads to.
MAX_SECONDS = 8.0
MIN_TASKS = 4
#: The step's own alarm (pipeline): far above MAX_SECONDS, so that on a machine slowed ten
#: times the bounded answer still comes out instead of none.
STEP_SECONDS = 60.0


@dataclass
class WaitScan:
    """What :func:`collect_waits` read, and how much of it it left out (never silently)."""

    waits: list[TaskWait] = field(default_factory=list)
    blocked_total: int = 0  #: D-state tasks in the task list (spinning ones not counted)
    examined: int = 0  #: tasks whose stacks were read
    timed_out: bool = False  #: MAX_SECONDS ran out before MAX_TASKS

    def note(self) -> Note | None:
        """The sentence for ``lacks`` when blocked tasks were left out, else None."""
        left = self.blocked_total - sum(1 for w in self.waits if w.blocked)
        if left <= 0:
            return None
        return Note(
            "lack.waits_bounded",
            total=self.blocked_total,
            examined=self.examined,
            left=left,
            why=f"{MAX_SECONDS:g} s" if self.timed_out else str(MAX_TASKS),
        )


def collect_waits(target: Target, clock: Callable[[], float] = time.monotonic) -> WaitScan:
    """The waits of the blocked tasks and of the holders of what they wait on.

    Holders jump the queue: with 6,000 tasks behind one mutex the owner is read right after
    the first waiter that names it, so the chain's root is found within the bound."""
    from drgn.helpers.linux.pid import for_each_task
    from drgn.helpers.linux.sched import task_on_cpu

    from .tasks import crash_state

    prog = target.prog
    deadline = clock() + MAX_SECONDS
    by_address: dict[int, drgn.Object] = {}
    blocked: list[drgn.Object] = []
    scan = WaitScan()
    for t in for_each_task(prog):
        by_address[t.value_()] = t
        state = crash_state(t)
        if state == "UN":
            blocked.append(t)
            scan.blocked_total += 1
        elif state == "RU" and _on_cpu(task_on_cpu, t):
            blocked.append(t)  # kept only if its stack spins on a lock (below)
    out = scan.waits
    done: set[int] = set()
    queue = deque((t, True) for t in blocked)
    while queue and len(out) < MAX_TASKS:
        if scan.examined >= MIN_TASKS and clock() > deadline:
            scan.timed_out = True
            break
        t, is_blocked = queue.popleft()
        addr = t.value_()
        if addr in done:
            continue
        scan.examined += 1
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
                queue.appendleft((by_address[holder], False))
    claim_holders(out)
    return scan


def _on_cpu(task_on_cpu: object, t: drgn.Object) -> bool:
    try:
        return bool(task_on_cpu(t))  # type: ignore[operator]
    except (LookupError, drgn.FaultError, AttributeError):
        return False


def _spins(kind: str) -> bool:
    return kind in ("spinlock", "rwlock", "mutex-spin")
