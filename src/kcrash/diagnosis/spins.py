"""A CPU spinning on a spinlock and the task that holds it, in words (issue 18).

:mod:`kcrash.facts.spinlocks` infers the holder from the other CPUs (a qspinlock has no
owner field); here each spinning task becomes a sentence that says so plainly — which CPU
spins on which lock in which function, held by which task on which CPU, doing what — and
one that says how the holder was found and how sure that is, and a next step built on those
facts. Pure functions over :class:`kcrash.model.TaskWait` (no drgn).
"""

from __future__ import annotations

from kcrash.diagnosis.verdict import Message
from kcrash.diagnosis.waits import lock_params
from kcrash.model import TaskWait

#: How many of the holder's innermost frames its sentence names.
PATH_FRAMES = 3


def spinning(waits: list[TaskWait]) -> list[TaskWait]:
    """The tasks that spin on a spinlock kcrash identified."""
    return [w for w in waits if w.blocked and w.lock is not None and w.lock.kind == "spinlock"]


def clue_message(code: str) -> Message:
    """One clue code of facts.spinlocks (``register-lock:rbx``, ``code:f``…) as a message."""
    kind, _, arg = code.partition(":")
    return Message(f"hang.clue.{kind}", {"reg": arg, "function": arg})


def _holder(w: TaskWait, waits: list[TaskWait]) -> TaskWait | None:
    lk = w.lock
    if lk is None or lk.owner_task is None:
        return None
    return next((h for h in waits if h.task == lk.owner_task), None)


def spin_messages(w: TaskWait, waits: list[TaskWait]) -> tuple[Message, Message | None]:
    """The sentence of one spinning task, and the one of how its holder was found."""
    lk = w.lock
    assert lk is not None
    p: dict[str, object] = {
        "cpu": lk.waiter_cpu,
        "pid": w.pid,
        "comm": w.comm,
        "want": lock_params(lk),
        "function": lk.taken_in or w.function,
    }
    holder = _holder(w, waits)
    if holder is None:
        return Message("hang.spin.nobody", p), None
    path = lk.holder_path[:PATH_FRAMES]
    story = Message(
        "hang.spin.held",
        {
            **p,
            "hpid": holder.pid,
            "hcomm": holder.comm,
            "hcpu": lk.holder_cpu,
            "where": path[0] if path else None,
            "callers": " ← ".join(path[1:]) or None,
        },
    )
    how = Message(
        "hang.spin.how",
        {"confidence": lk.holder_confidence, "clues": [clue_message(c) for c in lk.holder_clues]},
    )
    return story, how


def spin_next_step(w: TaskWait, waits: list[TaskWait]) -> Message | None:
    """What to read next: the holder's code between the lock and the place it runs now."""
    lk = w.lock
    holder = _holder(w, waits)
    if lk is None or holder is None:
        return None
    path = lk.holder_path[:PATH_FRAMES]
    # Where it took the lock, when a clue says so (a function naming the lock, or the one
    # that took it in the spinning task too); otherwise the sentence goes without it.
    taker = next(
        (c.partition(":")[2] for c in lk.holder_clues if c.startswith(("code:", "same-function:"))),
        None,
    )
    return Message(
        "hang.spin.next",
        {
            "pid": holder.pid,
            "comm": holder.comm,
            "hcpu": lk.holder_cpu,
            "want": lock_params(lk),
            "where": path[0] if path else None,
            "taker": taker,
        },
    )
